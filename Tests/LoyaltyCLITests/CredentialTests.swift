import Foundation
import Testing

/// Passwords never need to be arguments, and plain http is for this machine only.
@Suite struct CredentialTests {
    let cli: CLI
    let root: URL

    init() throws {
        cli = CLI(binary: try #require(CLI.locate(), "build the package first (swift build)"), environment: [:])
        root = FileManager.default.temporaryDirectory.appendingPathComponent("loyalty-creds-\(UUID().uuidString)")
    }

    @Test func thePasswordIsReadFromStandardInput() async throws {
        let cli = self.cli
        let phone = root.appendingPathComponent("phone").path
        let tablet = root.appendingPathComponent("tablet").path
        try await withLiveServer { server, _ in
            let enrolled = try await cli.run(
                [
                    "--device", phone, "--json", "enroll", "--server", server.absoluteString, "--name", "Anna",
                    "--email", "stdin@example.de", "--password-stdin",
                ], input: "correct horse\n")
            #expect(enrolled.status == 0, "\(enrolled.stderr)")
            let wrong = try await cli.run(
                [
                    "--device", tablet, "--json", "login", "--server", server.absoluteString, "--email",
                    "stdin@example.de", "--password-stdin",
                ], input: "wrong horse\n")
            #expect(wrong.status == 1)
            let right = try await cli.run(
                [
                    "--device", tablet, "--json", "login", "--server", server.absoluteString, "--email",
                    "stdin@example.de", "--password-stdin",
                ], input: "correct horse\n")
            #expect(right.status == 0, "\(right.stderr)")
            let none = try await cli.run([
                "--device", root.appendingPathComponent("third").path, "--json", "login", "--server",
                server.absoluteString, "--email", "stdin@example.de",
            ])
            #expect(none.status == 1, "no terminal and no --password-stdin: refused, not hung")
            #expect(none.errorCode == "no_password", "\(none.stdout)")
        }
    }

    /// The address is this machine's written as an IPv4-mapped IPv6 address, which the rule does not take for
    /// loopback: were the check ever to let it through, nothing would leave this machine.
    @Test func plainHTTPToAnotherMachineIsRefusedBeforeAnythingIsSent() async throws {
        let elsewhere = "http://[::ffff:127.0.0.1]:9"
        let run = try await cli.run(
            [
                "--device", root.appendingPathComponent("phone").path, "login", "--server", elsewhere,
                "--email", "a@example.de", "--password-stdin",
            ], input: "correct horse\n")
        #expect(run.status == 2)
        #expect(run.stderr.contains("https://"), "\(run.stderr)")
        let admin = try await cli.run(["admin", "member", "list", "--server", elsewhere, "--token", "t"])
        #expect(admin.status == 2)
    }

    /// A password change signs every other device out; the old password stops working. Signing out everywhere
    /// revokes every device; an operator's block refuses sign-in until it is lifted.
    @Test func changingThePasswordSigningOutEverywhereAndBlockingSignIn() async throws {
        let cli = self.cli
        let (phone, tablet, third) = (
            root.appendingPathComponent("phone").path, root.appendingPathComponent("tablet").path,
            root.appendingPathComponent("third").path
        )
        try await withLiveServer { server, token in
            let url = server.absoluteString
            func login(_ device: String, _ password: String) async throws -> CLI.Run {
                try await cli.run(
                    [
                        "--device", device, "--json", "login", "--server", url, "--email", "pw@example.de",
                        "--password-stdin",
                    ],
                    input: password + "\n")
            }
            let enrolled = try await cli.run(
                [
                    "--device", phone, "--json", "enroll", "--server", url, "--name", "Anna", "--email",
                    "pw@example.de",
                    "--password-stdin",
                ], input: "old password 1\n")
            let member = try #require(enrolled.json["member"] as? String)
            #expect(try await login(tablet, "old password 1").status == 0)

            let wrong = try await cli.run(
                ["--device", phone, "--json", "password", "--password-stdin"], input: "not it at all\nnew password 2\n")
            #expect(wrong.status == 1, "the current password must be right")
            let changed = try await cli.run(
                ["--device", phone, "--json", "password", "--password-stdin"], input: "old password 1\nnew password 2\n"
            )
            #expect(changed.status == 0, "\(changed.stderr)")
            let tabletSync = try await cli("--device", tablet, "--json", "sync")
            #expect(tabletSync.status == 1, "the other device is signed out")
            let why = try await cli("--device", tablet, "--json", "status").json["lastError"] as? String
            #expect(why?.contains("changed the password") == true, "the member is told why: \(why ?? "nothing")")
            #expect(try await cli("--device", phone, "--json", "sync").status == 0, "this one is not")
            #expect(try await login(third, "old password 1").status == 1)
            #expect(try await login(third, "new password 2").status == 0)

            let everywhere = try await cli("--device", phone, "--json", "sign-out-everywhere")
            #expect(everywhere.status == 0, "\(everywhere.stderr)")
            #expect(try await cli("--device", third, "--json", "sync").status == 1, "every device is signed out")

            let admin = ["--server", url, "--token", token, "--json"]
            #expect(try await cli.run(["admin", "member", "sign-in", member, "--block"] + admin).status == 0)
            let blocked = try await login(phone, "new password 2")
            #expect(blocked.status == 1)
            #expect(blocked.stdout.contains("blocked") || blocked.stderr.contains("blocked"), "\(blocked.stdout)")
            #expect(try await cli.run(["admin", "member", "sign-in", member, "--allow"] + admin).status == 0)
            #expect(try await login(phone, "new password 2").status == 0)
        }
    }
}
