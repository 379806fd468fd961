import Foundation
import HTTPTypes
import HummingbirdTesting
import LoyaltyCore
import LoyaltyTesting
import NIOCore
import Testing

@testable import LoyaltyServer

/// A method the contract does not declare for a path it does is answered 405 with `Allow`; an unknown path is 404.
@Suite struct ContractRouteTests {
    @Test(arguments: [
        (HTTPRequest.Method.delete, "/v1/sync/push", "POST"),
        (.get, "/v1/sync/pull", "POST"),
        (.put, "/v1/admin/members", "GET"),
        (.post, "/v1/admin/members/m-123", "GET"),
        (.delete, "/v1/admin/members/m-123/sign-in", "PUT"),
        (.patch, "/v1/devices/d-1/revoke", "POST"),
        (.post, "/healthz", "GET"),
    ])
    func anUndeclaredMethodIs405WithTheDeclaredOnesInAllow(
        method: HTTPRequest.Method, path: String, allow: String
    )
        async throws
    {
        let harness = try await Harness.make()
        try await harness.application().test(.router) { client in
            try await client.execute(uri: path, method: method, headers: [HTTPField.Name("Loyalty-Protocol")!: "1"]) {
                response in
                #expect(response.status == .methodNotAllowed, "\(method) \(path)")
                #expect(response.headers[.allow] == allow)
                let json = try? JSONSerialization.jsonObject(with: Data(response.body.readableBytesView))
                let code = ((json as? [String: Any])?["error"] as? [String: Any])?["code"] as? String
                #expect(code == "method_not_allowed")
            }
        }
    }

    @Test func aDeclaredMethodAndAnUnknownPathAreNotTouched() async throws {
        let harness = try await Harness.make()
        try await harness.application().test(.router) { client in
            let health = try await Call.make(client, .get, "/healthz", protocolVersion: nil)
            #expect(health.status == 200)
            let nowhere = try await Call.make(client, .get, "/v1/nowhere")
            #expect(nowhere.status == 404)
            let deeper = try await Call.make(client, .get, "/v1/admin/members/m-1/nothing")
            #expect(deeper.status == 404)
        }
    }

    @Test func theRoutesAreTheContractsOwn() async throws {
        let harness = try await Harness.make()
        let routes = try ContractRoutes(of: APIHandler(service: harness.service, metrics: harness.service.metrics))
        #expect(routes.methods(for: "/v1/admin/members") == [.get])
        #expect(routes.methods(for: "/v1/admin/members/m-1/sign-in") == [.put])
        #expect(routes.methods(for: "/v1/sync/push") == [.post])
        #expect(routes.methods(for: "/v1/unknown").isEmpty)
    }
}
