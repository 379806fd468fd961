import Foundation
import Testing

/// The ledger's return edge cases end to end: the built `loyalty` binary as till and member app, a live server with
/// a test clock on loopback.
@Suite struct ReturnEdgeCaseTests {
    let cli: CLI
    let root: URL

    init() throws {
        cli = CLI(binary: try #require(CLI.locate(), "build the package first (swift build)"), environment: [:])
        root = FileManager.default.temporaryDirectory.appendingPathComponent("loyalty-returns-\(UUID().uuidString)")
    }

    /// The issue's reproduction: P1's lot is spent on a reward, then expires with nothing left; returning P1 must
    /// still revoke the 300 points the member spent, from P2's lot.
    @Test func aReturnAfterTheLotExpiredRevokesWhatTheMemberSpent() async throws {
        let cli = self.cli
        let phone = root.appendingPathComponent("phone").path
        try await withLiveServer { server, token in
            let admin = ["--server", server.absoluteString, "--token", token, "--json"]
            func till(_ arguments: String...) async throws -> CLI.Run {
                let run = try await cli.run(["admin"] + arguments + admin)
                #expect(run.status == 0, "admin \(arguments.joined(separator: " ")): \(run.stderr)")
                return run
            }
            _ = try await till("clock", "set", "2027-01-10T10:00:00Z")
            let enrolled = try await cli(
                "--device", phone, "--json", "enroll", "--server", server.absoluteString, "--name", "Anna Schmidt",
                "--email", "expired-return@example.de", "--password", "correct horse")
            let member = try #require(enrolled.json["member"] as? String)
            let card = try #require(try await cli("--device", phone, "--json", "card").json["number"] as? String)
            _ = try await till("purchase", "--card", card, "--amount", "300.00", "--receipt", "RCPT-P1")
            _ = try await till("clock", "advance", "14d")
            _ = try await till("job", "unlock")
            #expect(try await cli("--device", phone, "sync").status == 0)
            let redeemed = try await cli("--device", phone, "reward", "redeem", "tote-bag")
            #expect(redeemed.status == 0, "\(redeemed.stderr)")
            #expect(try await cli("--device", phone, "sync").status == 0)
            _ = try await till("clock", "set", "2029-01-12T10:00:00Z")
            _ = try await till("job", "expire")
            _ = try await till("purchase", "--card", card, "--amount", "500.00", "--receipt", "RCPT-P2")
            _ = try await till("clock", "advance", "14d")
            _ = try await till("job", "unlock")

            let returned = try await till("return", "--receipt", "RCPT-P1", "--amount", "300.00")
            #expect(returned.json["points"] as? Int == 300, "the 300 spent points are revoked")
            let account = try await till("member", "show", member).json
            #expect(account["available"] as? Int == 200)
            #expect(account["owed"] as? Int == 0)
            #expect(account["lifetimeEarned"] as? Int == 500)
            // Two years idle is past the refresh token's lifetimes: the member signs in again on the phone.
            let tablet = root.appendingPathComponent("tablet").path
            let signedIn = try await cli(
                "--device", tablet, "login", "--server", server.absoluteString, "--email",
                "expired-return@example.de", "--password", "correct horse")
            #expect(signedIn.status == 0, "\(signedIn.stderr)")
            #expect(try await cli("--device", tablet, "--json", "balance").json["available"] as? Int == 200)
        }
    }

    /// A purchase under a euro earns nothing, but it is recorded: it can be returned (revoking nothing), not more
    /// than was bought, and its transaction cannot be credited twice.
    @Test func aPurchaseThatEarnedNothingCanBeReturned() async throws {
        let cli = self.cli
        let phone = root.appendingPathComponent("phone").path
        try await withLiveServer { server, token in
            let admin = ["--server", server.absoluteString, "--token", token, "--json"]
            let enrolled = try await cli(
                "--device", phone, "--json", "enroll", "--server", server.absoluteString, "--name", "Jonas",
                "--email", "zero-return@example.de", "--password", "correct horse")
            let member = try #require(enrolled.json["member"] as? String)
            let card = try #require(try await cli("--device", phone, "--json", "card").json["number"] as? String)
            let bought = try await cli.run(
                ["admin", "purchase", "--card", card, "--amount", "0.99", "--receipt", "RCPT-Z"] + admin)
            #expect(bought.status == 0, "\(bought.stderr)")
            #expect(bought.json["points"] as? Int == 0)
            let tooMuch = try await cli.run(["admin", "return", "--receipt", "RCPT-Z", "--amount", "1.00"] + admin)
            #expect(tooMuch.status == 1, "a return of more than was bought is refused")
            let returned = try await cli.run(["admin", "return", "--receipt", "RCPT-Z", "--amount", "0.99"] + admin)
            #expect(returned.status == 0, "\(returned.stderr)")
            #expect(returned.json["points"] as? Int == 0)
            let again = try await cli.run(["admin", "return", "--receipt", "RCPT-Z", "--amount", "0.01"] + admin)
            #expect(again.status == 1, "nothing is left of the purchase to return")
            let account = try await cli.run(["admin", "member", "show", member] + admin).json
            #expect(account["available"] as? Int == 0)
            #expect(account["lifetimeEarned"] as? Int == 0)
            let free = try await cli.run(
                ["admin", "purchase", "--card", card, "--amount", "0.00", "--receipt", "RCPT-FREE"] + admin)
            #expect(free.status == 0, "a purchase paid in full with a voucher is recorded: \(free.stderr)")
            let back = try await cli.run(["admin", "return", "--receipt", "RCPT-FREE", "--amount", "0.01"] + admin)
            #expect(back.status == 1, "nothing of it can be returned")
        }
    }
}
