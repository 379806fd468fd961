import ArgumentParser
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import LoyaltyCore
import LoyaltyStore
import LoyaltyTesting
import Testing

@testable import LoyaltyCLI
@testable import LoyaltyServer

@Suite struct CLIEndToEndTests {
    let cli: CLI
    let root: URL

    init() throws {
        cli = CLI(binary: try #require(CLI.locate(), "build the package first (swift build)"), environment: [:])
        root = FileManager.default.temporaryDirectory.appendingPathComponent("loyalty-cli-devices-\(UUID().uuidString)")
    }

    func device(_ name: String) -> String { root.appendingPathComponent(name).path }

    @Test(arguments: StorageBackend.all)
    func twoDevicesGoThroughAnOfflineConflictAndAgree(backend: StorageBackend) async throws {
        let cli = self.cli
        let phone = device("phone")
        let tablet = device("tablet")
        try await withLiveServer(backend) { server, token in
            let enrolled = try await cli(
                "--device", phone, "--json", "enroll", "--server", server.absoluteString, "--name", "Anna Schmidt",
                "--email", "anna@example.de", "--password", "correct horse")
            #expect(enrolled.status == 0, "\(enrolled.stderr)")
            let member = try #require(enrolled.json["member"] as? String)
            #expect(
                try await cli(
                    "--device", tablet, "login", "--server", server.absoluteString, "--email", "anna@example.de",
                    "--password", "correct horse"
                ).status == 0)

            let credit = try await cli(
                "admin", "purchase", "--server", server.absoluteString, "--token", token, "--member", member,
                "--amount", "1000.00", "--json")
            #expect(credit.status == 0)
            #expect(credit.json["points"] as? Int == 1000)
            #expect(
                try await cli("admin", "clock", "advance", "15d", "--server", server.absoluteString, "--token", token)
                    .status == 0)
            #expect(
                try await cli("admin", "job", "unlock", "--server", server.absoluteString, "--token", token).status == 0
            )
            for device in [phone, tablet] { #expect(try await cli("--device", device, "sync").status == 0) }

            for device in [phone, tablet] { #expect(try await cli("--device", device, "network", "off").status == 0) }
            for device in [phone, tablet] {
                #expect(try await cli("--device", device, "offer", "activate", "welcome-10").status == 0)
                #expect(try await cli("--device", device, "offer", "redeem", "welcome-10").status == 0)
            }
            let offline = try await cli("--device", phone, "--json", "sync")
            #expect(offline.status == 1)
            #expect(offline.errorCode == "offline")
            let queued = try await cli("--device", phone, "--json", "status")
            #expect(queued.json["pending"] as? Int == 2)
            #expect(queued.json["online"] as? Bool == false)

            for device in [phone, tablet] { #expect(try await cli("--device", device, "network", "on").status == 0) }
            let first = try await cli("--device", phone, "--json", "sync")
            #expect(first.json["applied"] as? Int == 2)
            let second = try await cli("--device", tablet, "--json", "sync")
            #expect(second.json["rejected"] as? Int == 1)
            let notices =
                try await cli("--device", tablet, "--json", "notices").json["notices"] as? [[String: Any]] ?? []
            #expect(notices.count == 1)
            #expect((notices.first?["message"] as? String)?.contains("already redeemed") == true)
            #expect(notices.first?["kind"] as? String == "rejected")

            _ = try await cli("--device", phone, "sync")
            for device in [phone, tablet] {
                let offers =
                    try await cli("--device", device, "--json", "offers").json["offers"] as? [[String: Any]] ?? []
                #expect(offers.first { $0["id"] as? String == "welcome-10" }?["state"] as? String == "redeemed")
                let balance = try await cli("--device", device, "--json", "balance").json
                #expect(balance["available"] as? Int == 1000)
                #expect(balance["pending"] as? Int == 0)
                #expect(balance["allowance"] as? Int == 250, "half the balance, split across the two devices")
                #expect(try await cli("--device", device, "--json", "status").json["pending"] as? Int == 0)
            }
            let card = try await cli("--device", phone, "--json", "card").json
            #expect((card["number"] as? String)?.count == 13)
            #expect(card["status"] as? String == "active")
            let history =
                try await cli("--device", phone, "--json", "history", "--limit", "5").json["entries"]
                as? [[String: Any]] ?? []
            #expect(history.contains { $0["kind"] as? String == "earn" && $0["amount"] as? Int == 1000 })

            // The till pays with points, but not with the 500 reserved for the two devices.
            let tooMuch = try await cli(
                "admin", "redeem", "--server", server.absoluteString, "--token", token, "--member", member,
                "--points", "600", "--json")
            #expect(tooMuch.status == 1)
            #expect(tooMuch.stderr.contains("500") || tooMuch.stdout.contains("500"), "\(tooMuch.stderr)")
            let paid = try await cli(
                "admin", "redeem", "--server", server.absoluteString, "--token", token, "--member", member,
                "--points", "400", "--json")
            #expect(paid.status == 0, "\(paid.stderr)")
            #expect(paid.json["points"] as? Int == -400)
        }
    }

    @Test(arguments: StorageBackend.all)
    func profileConsentsAndSurveysWorkOfflineAndShowTheDocumentedKeys(backend: StorageBackend) async throws {
        let cli = self.cli
        let phone = device("phone")
        try await withLiveServer(backend) { server, _ in
            _ = try await cli(
                "--device", phone, "enroll", "--server", server.absoluteString, "--name", "Jonas", "--email",
                "jonas@example.de", "--password", "correct horse")
            _ = try await cli("--device", phone, "network", "off")
            #expect(try await cli("--device", phone, "profile", "set", "address", "Hauptstraße 5, Hamburg").status == 0)
            #expect(try await cli("--device", phone, "consent", "set", "marketing-email", "granted").status == 0)
            #expect(
                try await cli(
                    "--device", phone, "survey", "answer", "store-visit", "--answer", "rating=4", "--answer",
                    "store=Hamburg"
                ).status == 0)
            let profile = try await cli("--device", phone, "--json", "profile").json
            #expect(Set(profile.keys) == ["name", "email", "phone", "birthdate", "address"])
            #expect(profile["address"] as? String == "Hauptstraße 5, Hamburg")
            let consents =
                try await cli("--device", phone, "--json", "consents").json["consents"] as? [[String: Any]] ?? []
            #expect(consents.first { $0["kind"] as? String == "marketing-email" }?["granted"] as? Bool == true)
            _ = try await cli("--device", phone, "network", "on")
            let synced = try await cli("--device", phone, "--json", "sync").json
            #expect(synced["applied"] as? Int == 3)
            #expect(
                try await cli("--device", phone, "--json", "balance").json["available"] as? Int == 50, "the survey paid"
            )
        }
    }

    @Test(arguments: StorageBackend.all)
    func badInputGivesTheDocumentedErrorAndExitCode(backend: StorageBackend) async throws {
        let cli = self.cli
        let phone = device("phone")
        try await withLiveServer(backend) { server, token in
            _ = try await cli(
                "--device", phone, "enroll", "--server", server.absoluteString, "--name", "Leyla", "--email",
                "leyla@example.de", "--password", "correct horse")
            let unknownOffer = try await cli("--device", phone, "--json", "offer", "redeem", "no-such-offer")
            #expect(unknownOffer.status == 1)
            #expect(unknownOffer.errorCode == "offer_not_found")
            #expect(try await cli("--device", phone, "--json", "status").json["pending"] as? Int == 0, "nothing queued")

            let overdraw = try await cli("--device", phone, "--json", "reward", "redeem", "voucher-20")
            #expect(overdraw.errorCode == "insufficient_points")

            let malformed = try await cli(
                "admin", "purchase", "--server", server.absoluteString, "--token", token, "--member", "m-x", "--amount",
                "12.345", "--json")
            #expect(malformed.status == 1)
            #expect((malformed.json["error"] as? [String: Any])?["message"] as? String ?? "" != "")

            let usage = try await cli("--device", phone, "consent", "set", "marketing-fax", "granted")
            #expect(usage.status == 2)
            #expect(usage.stderr.contains("marketing-email"))

            let wrongToken = try await cli(
                "admin", "member", "list", "--server", server.absoluteString, "--token", "not-the-token", "--json")
            #expect(wrongToken.status == 1)
            #expect(wrongToken.errorCode == "unauthorized")
        }
        let unreachable = try await cli("--device", phone, "--json", "sync")
        #expect(unreachable.status == 1, "the server is gone")
        #expect(unreachable.errorCode == "offline")
        let noServer = try await cli(
            "admin", "member", "list", "--server", "http://127.0.0.1:9", "--token", "whatever", "--json")
        #expect(noServer.status == 1)
        #expect(noServer.errorCode == "unreachable")
    }

    @Test func aCorruptDeviceDirectoryIsReportedAndLeftAlone() async throws {
        let directory = root.appendingPathComponent("corrupt")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let file = directory.appendingPathComponent("device.sqlite")
        let garbage = Data(repeating: 0x5A, count: 8192)
        try garbage.write(to: file)
        let run = try await cli("--device", directory.path, "--json", "balance")
        #expect(run.status == 1)
        #expect(run.errorCode == "device_store")
        #expect(run.stderr.contains(file.path))
        #expect(try Data(contentsOf: file) == garbage)
    }

    @Test func aDeviceThatNeverSignedInSaysSo() async throws {
        let run = try await cli("--device", device("fresh"), "--json", "balance")
        #expect(run.status == 1)
        #expect(run.errorCode == "not_signed_in")
    }

    @Test func theDemoTellsItsStoryAndEndsInAgreement() async throws {
        let run = try await cli("demo", "--json")
        #expect(run.status == 0, "\(run.stderr)")
        let document = run.json
        #expect(document["agree"] as? Bool == true)
        #expect((document["steps"] as? [Any])?.count == 9)
        let final = document["final"] as? [String: [String: String]] ?? [:]
        #expect(final["available points"]?["server"] == "300")
        #expect(final["phone number"]?["phone"] == "+49 30 2222222")
    }

    @Test func theDemoCanKeepItsDirectoriesForExploring() async throws {
        let keep = root.appendingPathComponent("kept")
        #expect(try await cli("demo", "--keep", keep.path, "--json").status == 0)
        let balance = try await cli("--device", keep.appendingPathComponent("phone").path, "--json", "balance")
        #expect(balance.json["available"] as? Int == 300)
        #expect(FileManager.default.fileExists(atPath: keep.appendingPathComponent("server/loyalty.sqlite").path))
    }
}
