import Foundation
import LoyaltyServer
import LoyaltyStore
import LoyaltyTesting
import Testing

/// `loyalty logout` revokes the device on the server, so that a copy of its refresh token is worth nothing.
@Suite struct LogoutTests {
    let cli: CLI
    let root: URL

    init() throws {
        cli = CLI(binary: try #require(CLI.locate(), "build the package first (swift build)"), environment: [:])
        root = FileManager.default.temporaryDirectory.appendingPathComponent("loyalty-logout-\(UUID().uuidString)")
    }

    @Test func aCopiedRefreshTokenIsWorthNothingAfterLogout() async throws {
        let cli = self.cli
        let phone = root.appendingPathComponent("phone").path
        let server = try await TestServer.make()
        try await server.live { url in
            let enrolled = try await cli(
                "--device", phone, "--json", "enroll", "--server", url.absoluteString, "--name", "Anna",
                "--email", "logout@example.de", "--password", "correct horse")
            #expect(enrolled.status == 0, "\(enrolled.stderr)")
            let copied = try #require(
                try DeviceStore(path: phone + "/device.sqlite").identity()?.refreshToken, "the token to steal")
            let logout = try await cli("--device", phone, "--json", "logout")
            #expect(logout.status == 0, "\(logout.stderr)")
            #expect(logout.json["revokedOnServer"] as? Bool == true)
            let error = await #expect(throws: APIFailure.self) { try await server.service.refresh(token: copied) }
            #expect(error?.kind == .deviceRevoked)
        }
    }

    @Test func anOfflineLogoutWipesTheDeviceAndSaysTheServerWasNotTold() async throws {
        let cli = self.cli
        let phone = root.appendingPathComponent("phone").path
        try await withLiveServer { url, _ in
            _ = try await cli(
                "--device", phone, "enroll", "--server", url.absoluteString, "--name", "Anna",
                "--email", "offline-logout@example.de", "--password", "correct horse")
            _ = try await cli("--device", phone, "network", "off")
            let logout = try await cli("--device", phone, "--json", "logout")
            #expect(logout.status == 0)
            #expect(logout.json["revokedOnServer"] as? Bool == false)
            #expect(try DeviceStore(path: phone + "/device.sqlite").identity() == nil, "nothing is left signed in")
        }
    }
}
