internal import Foundation
internal import HTTPTypes
internal import LoyaltyAPI
internal import LoyaltyCore
internal import OpenAPIRuntime
internal import Prometheus

/// Answers `POST /v1/sync/push` and `POST /v1/sync/pull` itself, after the gate has checked the protocol version,
/// the body size and the access token's signature and expiry (each reads its device's row with its own work), in the
/// forms the contract gives (docs/openapi.yaml). A push is read by
/// ``PushJSON`` (the generated types read what it gives up on, and name what is wrong) and answered by it; a pull is
/// read by ``PullJSON`` in the same way, and its answer is written by ``PullJSON`` from the entities' stored bytes,
/// without the generated types' decoding and re-encoding of every entity. Every other operation passes through.
struct SyncResponder: ServerMiddleware {
    let service: SyncService

    func intercept(
        _ request: HTTPRequest, body: HTTPBody?, metadata: ServerRequestMetadata, operationID: String,
        next: @Sendable (HTTPRequest, HTTPBody?, ServerRequestMetadata) async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> (HTTPResponse, HTTPBody?) {
        guard operationID == "pull" || operationID == "push" else { return try await next(request, body, metadata) }
        guard let credentials = RequestContext.credentials else { throw APIFailure(.unauthorized, "no device token") }
        guard request.headerFields[.contentType].map({ $0.lowercased().hasPrefix("application/json") }) ?? false,
            let body
        else {
            throw APIFailure(.badRequest, "send the \(operationID) request as JSON (Content-Type: application/json)")
        }
        // The gate has already bounded the body's size.
        let data = try await Data(collecting: body, upTo: .max)
        let answer: Data
        let started = ContinuousClock.now
        if operationID == "push" {
            answer = try PushJSON.encode(try await service.push(try PushJSON.decode(data), as: credentials))
            service.metrics.pushDuration.record(ContinuousClock.now - started)
        } else {
            let pull = try PullJSON.decodeRequest(data, defaultLimit: service.configuration.defaultPageSize)
            answer = try PullJSON.encode(try await service.pullStored(pull, as: credentials))
            service.metrics.pullDuration.record(ContinuousClock.now - started)
        }
        var response = HTTPResponse(status: .ok)
        response.headerFields[.contentType] = "application/json; charset=utf-8"
        return (response, HTTPBody(answer))
    }
}
