import Foundation
import LoyaltyCore
import LoyaltyStore
import Testing

/// The device's store holds the member's refresh token and personal data: its owner alone may read it.
@Suite struct DeviceFilePermissionTests {
    @Test func theDeviceStoreAndItsLogAreTheOwnersAlone() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("device-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try DeviceStore(path: directory.appendingPathComponent("device.sqlite").path)
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        #expect(files.contains("device.sqlite-wal"), "\(files)")
        for file in files {
            let attributes = try FileManager.default.attributesOfItem(
                atPath: directory.appendingPathComponent(file).path)
            #expect((attributes[.posixPermissions] as? Int).map { $0 & 0o777 } == 0o600, "\(file)")
        }
        _ = store
    }
}

/// A device keeps at most ``DeviceStore/noticeLimit`` notices: the oldest go as new ones arrive.
@Suite struct DeviceNoticeCapTests {
    @Test func theNewestNoticesAreKept() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("notices-\(UUID().uuidString).sqlite")
        defer { try? FileManager.default.removeItem(at: path) }
        let (store, now) = try DeviceStoreTests.bootstrapped(path: path.path, lots: 1)
        var last: UInt64 = 0
        for index in 0..<(DeviceStore.noticeLimit + 20) {
            let envelope = try store.record(.setConsent(.marketingEmail, granted: index % 2 == 0), at: now).0
            _ = try store.recordResults(
                [
                    MutationResult(
                        sequence: envelope.sequence, status: .rejected(MutationRejection(.memberNotActive, "n\(index)"))
                    )
                ], at: now.adding(.milliseconds(Int64(index))))
            last = envelope.sequence
        }
        let notices = try store.notices()
        #expect(notices.count == DeviceStore.noticeLimit)
        #expect(notices.contains { $0.sequence == last }, "the newest is kept")
        #expect(!notices.contains { $0.sequence == 1 }, "the oldest is gone")
    }
}
