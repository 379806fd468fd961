import Foundation
import LoyaltyStore
import LoyaltyTesting
import Testing

/// The operator's segments through the real `loyalty` binary against a real server: define (a bad rule refused with
/// its column), run the job, see the member's figures and why they are in the segment, list, show, drop.
@Suite struct SegmentCLITests {
    let cli: CLI
    let root: URL

    /// Enrols a member on the device directory `phone` through the real binary; returns the member's id.
    static func enrol(_ cli: CLI, _ phone: String, _ server: URL, name: String, email: String) async throws -> String {
        let enrolled = try await cli(
            "--device", phone, "--json", "enroll", "--server", server.absoluteString, "--name", name, "--email", email,
            "--password", "correct horse")
        return try #require(enrolled.json["member"] as? String, "\(enrolled.stderr)")
    }

    init() throws {
        cli = CLI(binary: try #require(CLI.locate(), "build the package first (swift build)"), environment: [:])
        root = FileManager.default.temporaryDirectory.appendingPathComponent("loyalty-segments-\(UUID().uuidString)")
    }

    @Test(arguments: StorageBackend.all)
    func anOperatorDefinesASegmentAndSeesWhoIsInItAndWhy(backend: StorageBackend) async throws {
        let cli = self.cli
        let phone = root.appendingPathComponent("phone-\(backend)").path
        try await withLiveServer(backend) { server, token in
            let admin = ["--server", server.absoluteString, "--token", token]
            func operator_(_ arguments: String...) async throws -> CLI.Run {
                try await cli.run(["admin"] + arguments + admin)
            }
            let member = try await Self.enrol(
                cli, phone, server, name: "Anna Schmidt", email: "segments-\(backend)@example.de")
            #expect(try await cli("--device", phone, "consent", "set", "profiling", "granted").status == 0)
            #expect(try await cli("--device", phone, "sync").status == 0)
            for amount in ["120.00", "95.50"] {
                let run = try await operator_(
                    "purchase", "--member", member, "--amount", amount, "--shop", "Berlin Mitte", "--category",
                    "food,drugstore")
                #expect(run.status == 0, "\(run.stderr)")
            }
            let badCategory = try await operator_(
                "purchase", "--member", member, "--amount", "5.00", "--category", "Food")
            #expect(
                badCategory.status != 0 && badCategory.stderr.contains("category 'Food' must be"),
                "\(badCategory.stderr)")

            let timeline = try await operator_("member", "timeline", member)
            #expect(timeline.status == 0, "\(timeline.stderr)")
            #expect(timeline.stdout.contains("till @ Berlin Mitte: purchase T-"), "\(timeline.stdout)")
            #expect(timeline.stdout.contains("(food, drugstore)"), "\(timeline.stdout)")
            #expect(timeline.stdout.contains("profiling granted"), "\(timeline.stdout)")

            let bad = try await operator_("segment", "define", "spenders", "--rule", "monetry >= 200")
            #expect(bad.status != 0)
            #expect(
                bad.stderr.contains("at column 1: unknown attribute 'monetry' (did you mean monetary?)"),
                "\(bad.stderr)")
            let defined = try await operator_(
                "segment", "define", "spenders", "--rule", "monetary >= 200 and consent(profiling)")
            #expect(defined.status == 0, "\(defined.stderr)")
            #expect(try await operator_("segment", "list").stdout.contains("not run yet"))

            let job = try await operator_("job", "segment")
            #expect(job.status == 0, "\(job.stderr)")
            #expect(job.stdout.contains("1 entries into or exits from segments"), "\(job.stdout)")

            let shown = try await operator_("member", "show", member)
            #expect(shown.status == 0, "\(shown.stderr)")
            #expect(shown.stdout.contains("Stage: new"), "\(shown.stdout)")
            #expect(shown.stdout.contains("2 purchases and 215.50 in 12 months"), "\(shown.stdout)")
            #expect(
                shown.stdout.contains("Segment spenders, because monetary = 215.5, consent(profiling) = true"),
                "\(shown.stdout)")

            let list = try await operator_("segment", "list")
            #expect(list.stdout.contains("spenders") && list.stdout.contains("1 members"), "\(list.stdout)")
            let members = try await cli.run(["admin", "segment", "show", "spenders", "--members", "--json"] + admin)
            #expect(members.json["members"] as? [String] == [member], "\(members.stdout)")

            // The device sees its segment through the feed.
            #expect(try await cli("--device", phone, "sync").status == 0)
            let dropped = try await operator_("segment", "drop", "spenders")
            #expect(dropped.status == 0, "\(dropped.stderr)")
            let again = try await operator_("segment", "drop", "spenders")
            #expect(again.status != 0 && again.stderr.contains("there is no segment spenders"), "\(again.stderr)")
        }
    }

    /// The programme report through the CLI: text, CSV and JSON, each with the purchase just made; bad ranges and
    /// periods refused with a message naming the problem.
    @Test func anOperatorReadsTheProgrammeReport() async throws {
        let cli = self.cli
        let phone = root.appendingPathComponent("phone-report").path
        try await withLiveServer(.sqlite) { server, token in
            let admin = ["--server", server.absoluteString, "--token", token]
            func operator_(_ arguments: String...) async throws -> CLI.Run {
                try await cli.run(["admin"] + arguments + admin)
            }
            let member = try await Self.enrol(cli, phone, server, name: "Ben Meyer", email: "report@example.de")
            #expect(try await operator_("purchase", "--member", member, "--amount", "64.90").status == 0)
            #expect(try await operator_("job", "segment").status == 0)

            let text = try await operator_("report", "programme")
            #expect(text.status == 0, "\(text.stderr)")
            #expect(text.stdout.contains("Members          1 (0 with profiling consent)"), "\(text.stdout)")
            #expect(text.stdout.contains("Liability        64 points = 0.64 EUR"), "\(text.stdout)")

            let csv = try await operator_("report", "programme", "--by", "week", "--csv")
            #expect(csv.status == 0, "\(csv.stderr)")
            let rows = csv.stdout.split(separator: "\n").map {
                $0.split(separator: ",", omittingEmptySubsequences: false)
            }
            #expect(rows.first?.prefix(3) == ["start", "end", "enrolments"], "\(csv.stdout)")
            #expect(rows.count >= 50, "a year of weeks and the header: \(rows.count)")
            let last = try #require(rows.last)
            #expect(last[7] == "64.90" && last[8] == "64", "this week's revenue and points: \(last)")

            let json = try await operator_("report", "programme", "--json", "--recompute")
            #expect(json.status == 0, "\(json.stderr)")
            #expect(json.json["source"] as? String == "raw events")
            #expect((json.json["headline"] as? [String: Any])?["liabilityPoints"] as? Int == 64, "\(json.stdout)")

            let backwards = try await operator_("report", "programme", "--from", "2026-05-01", "--to", "2026-04-01")
            #expect(backwards.status != 0 && backwards.stderr.contains("is after to"), "\(backwards.stderr)")
            let daily = try await operator_("report", "programme", "--by", "day")
            #expect(daily.status != 0 && daily.stderr.contains("--by must be week or month"), "\(daily.stderr)")
            let badDate = try await operator_("report", "programme", "--from", "1 May")
            #expect(badDate.status != 0 && badDate.stderr.contains("--from must be a date"), "\(badDate.stderr)")
        }
    }

    /// The member's copy of their data through the CLI, from the device and from the service desk: the same
    /// document, in an owner-only file that is never overwritten.
    @Test func aMemberAndTheServiceDeskExportTheMembersData() async throws {
        let cli = self.cli
        let phone = root.appendingPathComponent("phone-export").path
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        let file = root.appendingPathComponent("my-data.json").path
        try await withLiveServer(.sqlite) { server, token in
            let admin = ["--server", server.absoluteString, "--token", token]
            let member = try await Self.enrol(cli, phone, server, name: "Clara Vogel", email: "export@example.de")
            #expect(
                try await cli.run(["admin", "purchase", "--member", member, "--amount", "30.00"] + admin).status == 0)
            #expect(try await cli("--device", phone, "consent", "set", "marketing-email", "granted").status == 0)
            #expect(try await cli("--device", phone, "sync").status == 0)

            let exported = try await cli("--device", phone, "privacy", "export", "--out", file)
            #expect(exported.status == 0, "\(exported.stderr)")
            #expect(exported.stdout.contains("1 consent decision, 1 device"), "\(exported.stdout)")
            let attributes = try FileManager.default.attributesOfItem(atPath: file)
            #expect((attributes[.posixPermissions] as? Int) == 0o600)
            let document = try #require(
                try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: file))) as? [String: Any])
            #expect(document["format"] as? String == "loyalty-member-export" && document["version"] as? Int == 1)
            #expect((document["account"] as? [String: Any])?["email"] as? String == "export@example.de")
            #expect((document["movements"] as? [Any])?.count == 1, "the purchase's movement")

            let again = try await cli("--device", phone, "privacy", "export", "--out", file)
            #expect(again.status != 0 && again.stderr.contains("an existing file is kept"), "\(again.stderr)")

            // As CSV files in a zip archive, read back by another implementation (Python's zipfile and csv).
            let zip = root.appendingPathComponent("my-data.zip").path
            let noFile = try await cli("--device", phone, "privacy", "export", "--format", "csv")
            #expect(noFile.status != 0 && noFile.stderr.contains("give --out FILE"), "\(noFile.stderr)")
            let csv = try await cli("--device", phone, "privacy", "export", "--format", "csv", "--out", zip)
            #expect(csv.status == 0 && csv.stdout.contains("a zip of CSV files"), "\(csv.stderr)")
            let reader = Process()
            reader.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            reader.arguments = [
                "python3", "-c",
                """
                import csv, io, sys, zipfile
                archive = zipfile.ZipFile(sys.argv[1])
                assert archive.testzip() is None
                rows = list(csv.DictReader(io.TextIOWrapper(archive.open("movements.csv"), "utf-8")))
                member = dict(csv.reader(io.TextIOWrapper(archive.open("member.csv"), "utf-8")))
                print(len(archive.namelist()), len(rows), rows[0]["kind"], member["format"])
                """, zip,
            ]
            let pipe = Pipe()
            reader.standardOutput = pipe
            try reader.run()
            reader.waitUntilExit()
            let read = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            #expect(reader.terminationStatus == 0)
            #expect(
                read.trimmingCharacters(in: .whitespacesAndNewlines) == "14 1 earn loyalty-member-export", "\(read)")

            let desk = try await cli.run(["admin", "member", "export", member] + admin)
            #expect(desk.status == 0, "\(desk.stderr)")
            let printed = try #require(try JSONSerialization.jsonObject(with: Data(desk.stdout.utf8)) as? [String: Any])
            #expect((printed["member"] as? [String: Any])?["id"] as? String == member)
            #expect((printed["lots"] as? [Any])?.count == (document["lots"] as? [Any])?.count)
            let nobody = try await cli.run(["admin", "member", "export", "m-nobody"] + admin)
            #expect(nobody.status != 0, "\(nobody.stdout)")

            // The service desk blocks the member: the device shows it, the till refuses the card; then unblocks.
            let blocked = try await cli.run(
                ["admin", "member", "block", member, "--reason", "Card reported lost; please call us."] + admin)
            #expect(blocked.status == 0, "\(blocked.stderr)")
            #expect(try await cli("--device", phone, "sync").status == 0)
            let status = try await cli("--device", phone, "status")
            #expect(
                status.stdout.contains("Account:  blocked: Card reported lost; please call us."), "\(status.stdout)")
            let refused = try await cli.run(["admin", "purchase", "--member", member, "--amount", "5.00"] + admin)
            #expect(refused.status != 0 && refused.stderr.contains("blocked"), "\(refused.stderr)")
            #expect(try await cli.run(["admin", "member", "unblock", member] + admin).status == 0)
            #expect(
                try await cli.run(["admin", "purchase", "--member", member, "--amount", "5.00"] + admin).status == 0)
        }
    }

    /// A device that signs out leaves nothing of the member readable in its files (database, write-ahead log,
    /// shared memory), and a device directory others may enter is reported.
    @Test func aSignedOutDeviceLeavesNothingReadable() async throws {
        let cli = self.cli
        let directory = root.appendingPathComponent("phone-wipe")
        let phone = directory.path
        try await withLiveServer(.sqlite) { server, token in
            let admin = ["--server", server.absoluteString, "--token", token]
            let member = try await Self.enrol(cli, phone, server, name: "Dora Wipetest", email: "wipe-check@example.de")
            #expect(
                try await cli.run(["admin", "purchase", "--member", member, "--amount", "30.00"] + admin).status == 0)
            #expect(try await cli("--device", phone, "profile", "set", "phone", "+49 30 9876543").status == 0)
            #expect(try await cli("--device", phone, "sync").status == 0)
            let identity = try #require(
                try DeviceStore(path: directory.appendingPathComponent("device.sqlite").path).identity())
            let secrets = [
                "wipe-check@example.de", "Dora Wipetest", "9876543", identity.cardNumber,
                String(identity.refreshToken.suffix(20)), String(identity.accessToken.prefix(24)),
            ]
            func readable() throws -> [String] {
                var found: [String] = []
                for name in ["device.sqlite", "device.sqlite-wal", "device.sqlite-shm"] {
                    let file = directory.appendingPathComponent(name)
                    guard let bytes = try? Data(contentsOf: file) else { continue }
                    for secret in secrets where bytes.range(of: Data(secret.utf8)) != nil {
                        found.append("\(name): \(secret)")
                    }
                }
                return found
            }
            #expect(
                !(try readable()).isEmpty, "before signing out the member's data is in the files (the check can see it)"
            )
            let tokens = directory.appendingPathComponent("device.sqlite.secrets").path
            #expect(try FileManager.default.attributesOfItem(atPath: tokens)[.posixPermissions] as? Int == 0o600)
            let out = try await cli("--device", phone, "logout")
            #expect(out.status == 0, "\(out.stderr)")
            #expect(try readable() == [], "left readable after signing out")
            #expect(!FileManager.default.fileExists(atPath: tokens), "the tokens' file is gone")

            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: phone)
            let status = try await cli("--device", phone, "status")
            #expect(status.stderr.contains("can be entered by other users (mode 755)"), "\(status.stderr)")
        }
    }

    /// The member asks for erasure on the device, offline: queued and shown; at the next sync it is done, the device
    /// is signed out and wiped, and the service desk finds only the pseudonymous books.
    @Test func aMemberAsksForErasureOffline() async throws {
        let cli = self.cli
        let phone = root.appendingPathComponent("phone-erase").path
        try await withLiveServer(.sqlite) { server, token in
            let admin = ["--server", server.absoluteString, "--token", token]
            let member = try await Self.enrol(cli, phone, server, name: "Emil Erase", email: "erase-offline@example.de")
            #expect(
                try await cli.run(["admin", "purchase", "--member", member, "--amount", "40.00"] + admin).status == 0)
            #expect(try await cli("--device", phone, "network", "off").status == 0)
            let unconfirmed = try await cli("--device", phone, "privacy", "erase")
            #expect(unconfirmed.status != 0 && unconfirmed.stderr.contains("Add --yes"), "\(unconfirmed.stderr)")
            let asked = try await cli("--device", phone, "privacy", "erase", "--yes")
            #expect(asked.status == 0 && asked.stdout.contains("Erasure requested"), "\(asked.stderr)")
            let status = try await cli("--device", phone, "status")
            #expect(status.stdout.contains("Account:  erasure requested"), "\(status.stdout)")
            #expect(try await cli("--device", phone, "network", "on").status == 0)
            _ = try await cli("--device", phone, "sync")
            let after = try await cli("--device", phone, "--json", "status")
            #expect(
                after.json["member"] == nil || after.json["member"] is NSNull, "the device was wiped: \(after.stdout)")
            // The revoked device's wipe leaves nothing readable either (the path every revoked device takes).
            for name in ["device.sqlite", "device.sqlite-wal", "device.sqlite-shm", "device.sqlite.secrets"] {
                guard let bytes = FileManager.default.contents(atPath: phone + "/" + name) else { continue }
                for secret in ["erase-offline@example.de", "Emil Erase"] {
                    #expect(bytes.range(of: Data(secret.utf8)) == nil, "\(name) still holds \(secret)")
                }
            }
            let desk = try await cli.run(["admin", "member", "export", member] + admin)
            let document = try #require(
                try JSONSerialization.jsonObject(with: Data(desk.stdout.utf8)) as? [String: Any])
            #expect((document["member"] as? [String: Any])?["status"] as? String == "erased")
            #expect(
                ((document["account"] as? [String: Any])?["email"] as? String)?.hasSuffix("@erased.invalid") == true)
        }
    }
}
