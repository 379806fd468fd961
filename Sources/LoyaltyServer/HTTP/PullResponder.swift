internal import Foundation
public import HTTPTypes
internal import LoyaltyAPI
internal import LoyaltyCore
public import OpenAPIRuntime

/// Answers `POST /v1/sync/pull` itself, after the gate has checked the protocol version, the body size and the
/// device's token: the answer is written by ``PullJSON`` from the entities' stored bytes, the form the contract
/// gives (docs/openapi.yaml), without the generated types' decoding and re-encoding of every entity. Every other
/// operation passes through.
struct PullResponder: ServerMiddleware {
    let service: SyncService

    func intercept(
        _ request: HTTPRequest, body: HTTPBody?, metadata: ServerRequestMetadata, operationID: String,
        next: @Sendable (HTTPRequest, HTTPBody?, ServerRequestMetadata) async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> (HTTPResponse, HTTPBody?) {
        guard operationID == "pull" else { return try await next(request, body, metadata) }
        guard let device = RequestContext.device else { throw APIFailure(.unauthorized, "no device token") }
        guard request.headerFields[.contentType].map({ $0.lowercased().hasPrefix("application/json") }) ?? false,
            let body
        else {
            throw APIFailure(.badRequest, "send the pull request as JSON (Content-Type: application/json)")
        }
        // The gate has already bounded the body's size.
        let data = try await Data(collecting: body, upTo: .max)
        let wire = try JSONDecoder().decode(Components.Schemas.PullRequest.self, from: data)
        let pull = try PullRequest(wire: wire, defaultLimit: service.configuration.defaultPageSize)
        let answer = try PullJSON.encode(try await service.pullStored(pull, from: device))
        var response = HTTPResponse(status: .ok)
        response.headerFields[.contentType] = "application/json; charset=utf-8"
        return (response, HTTPBody(answer))
    }
}
