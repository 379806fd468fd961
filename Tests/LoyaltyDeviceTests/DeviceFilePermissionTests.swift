import Foundation
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
