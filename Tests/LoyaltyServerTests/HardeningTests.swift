import Foundation
import Logging
import LoyaltyCore
import LoyaltyTesting
import Testing

@testable import LoyaltyServer

/// The server's files are its owner's alone, and the operator's inputs cannot crash it.
@Suite struct HardeningTests {
    static func mode(_ path: String) throws -> Int {
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        return try #require(attributes[.posixPermissions] as? Int) & 0o777
    }

    @Test func theDataDirectoryIsTheOwnersAloneAndSoAreTheDatabaseAndTheKey() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "loyalty-perms-\(UUID().uuidString)/server")
        defer { try? FileManager.default.removeItem(at: directory.deletingLastPathComponent()) }
        let settings = try ServerSettings(
            port: 0, dataDirectory: directory, testClock: true,
            configuration: ServerConfiguration(adminToken: TestServer.adminToken), schedulesJobs: false)
        let service = try await LoyaltyServerApp.makeService(settings: settings, logger: Logger(label: "test"))
        _ = try await service.enroll(
            Registration(name: "Anna", email: "perms@example.de"), password: "correct horse", deviceName: "phone")

        #expect(try Self.mode(directory.path) == 0o700)
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        #expect(files.contains("loyalty.sqlite-wal"), "the log exists while the server runs: \(files)")
        for file in files {
            #expect(try Self.mode(directory.appendingPathComponent(file).path) == 0o600, "\(file)")
        }
    }

    @Test func aSigningKeyOthersMayReadIsRefusedWithTheReason() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "loyalty-key-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        _ = try TokenAuthority.loadKey(in: directory)
        let key = directory.appendingPathComponent("signing.key").path
        #expect(try Self.mode(key) == 0o600)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: key)
        let error = #expect(throws: APIFailure.self) { try TokenAuthority.loadKey(in: directory) }
        #expect(error?.message.contains("chmod 600") == true, "\(String(describing: error?.message))")
    }

    @Test(arguments: [Int.min, Int.max, -1_000_001, 1_000_001, 0])
    func anAdjustmentOutOfRangeIsRefusedAndTheServerGoesOn(points: Int) async throws {
        let harness = try await Harness.make()
        let (session, _) = try await harness.enroll()
        let error = await #expect(throws: APIFailure.self) {
            try await harness.service.adjustPoints(member: session.memberID, points: points, reason: "attack")
        }
        #expect(error?.kind == .unprocessable)
        let fine = try await harness.service.adjustPoints(member: session.memberID, points: 10, reason: "goodwill")
        #expect(fine.points == 10)
    }

    @Test func aClockAdvanceThatWouldOverflowIsRefused() async throws {
        let harness = try await Harness.make()
        for span in [TimeSpan.milliseconds(.max), .days(365 * 201)] {
            let error = #expect(throws: APIFailure.self) { try harness.service.setClock(to: nil, advanceBy: span) }
            #expect(error?.kind == .unprocessable)
        }
        #expect(try harness.service.setClock(to: nil, advanceBy: .days(1)) > Timestamp(Date()))
    }
}
