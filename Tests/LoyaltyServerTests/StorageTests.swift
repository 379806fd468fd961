import Foundation
import LoyaltyCore
import LoyaltyTesting
import Testing

@testable import LoyaltyServer

@Suite struct StorageTests {
    @Test func theEmbeddedProgrammeIsTheFixture() throws {
        let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Fixtures")
        let program = try Program.decode(json: try Data(contentsOf: fixtures.appendingPathComponent("program.json")))
        let catalogue = try Catalogue.decode(
            json: try Data(contentsOf: fixtures.appendingPathComponent("catalogue.json")))
        #expect(try Program.decode(json: Data(DefaultProgramme.programJSON.utf8)) == program)
        #expect(try Catalogue.decode(json: Data(DefaultProgramme.catalogueJSON.utf8)) == catalogue)
    }

    @Test func aCorruptDatabaseFileIsAnErrorThatNamesItAndIsLeftUntouched() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("corrupt-\(UUID().uuidString).sqlite")
        let garbage = Data(repeating: 0x42, count: 8192)
        try garbage.write(to: file)
        do {
            _ = try SQLiteStorage(path: file.path)
            Issue.record("a corrupt file was opened")
        } catch let error as LoyaltyError {
            #expect(error.code == .unusableStore)
            #expect(error.message.contains(file.path))
            #expect(error.message.contains("left untouched"))
            #expect(error.cause != nil, "SQLite's own error is kept as the cause")
        }
        #expect(try Data(contentsOf: file) == garbage)
    }

    @Test(arguments: StorageBackend.all)
    func aStoreSurvivesReopeningAndMigratingAgain(backend: StorageBackend) async throws {
        let harness = try await Harness.make(backend)
        let (session, _) = try await harness.enroll()
        try await harness.give(120, to: session.memberID)
        let reopened: any ServerStorage
        if let url = harness.settings.database {
            let storage = PostgresStorage(url: url, connections: 2, idleTimeout: .seconds(2), logger: harness.logger)
            storage.runInBackground()
            reopened = storage
        } else {
            reopened = try SQLiteStorage(
                path: harness.settings.dataDirectory.appendingPathComponent("loyalty.sqlite").path)
        }
        try await reopened.migrate()
        let state = try await reopened.withMember(
            MemberWorkRequest(memberID: session.memberID, now: harness.clock.now())
        ) { $0.state }
        #expect(state.ledger.available == 120)
        #expect(
            try await reopened.installProgramme(
                harness.settings.program, catalogue: harness.settings.catalogue, now: harness.clock.now()) == false)
    }
}
