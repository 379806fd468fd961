internal import Foundation
internal import GRDB
internal import HTTPTypes
internal import Logging
internal import LoyaltyAPI
internal import LoyaltyCore
internal import OpenAPIRuntime
internal import Prometheus

/// Turns every failure into `{"error": {"code", "message"}}` with its status. Malformed JSON, missing fields,
/// wrong types and unknown fields are 400s whose message names the field; anything unexpected is a 500 that
/// is logged and says nothing about internals.
struct FailureMiddleware: ServerMiddleware {
    let logger: Logger
    let metrics: ServerMetrics

    func intercept(
        _ request: HTTPRequest, body: HTTPBody?, metadata: ServerRequestMetadata, operationID: String,
        next: @Sendable (HTTPRequest, HTTPBody?, ServerRequestMetadata) async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> (HTTPResponse, HTTPBody?) {
        do {
            return try await next(request, body, metadata)
        } catch {
            let failure = Self.failure(for: error)
            if failure.kind.status == 403 || failure.kind.status == 429 {
                (failure.kind.status == 403 ? metrics.forbidden : metrics.rateLimited).increment()
                logger.notice(
                    "security: request refused",
                    metadata: [
                        "operation": "\(operationID)", "status": "\(failure.kind.status)",
                        "client": "\(ClientAddress.current ?? "in-process")",
                    ])
            }
            if failure.kind == .unavailable,
                let error = error as? LoyaltyError ?? (error as? ServerError)?.underlyingError as? LoyaltyError
            {
                logger.warning(
                    "request refused: storage unavailable",
                    metadata: ["operation": "\(operationID)", "error": "\(Self.kind(of: error))"])
            }
            if failure.kind.status >= 500 && failure.kind != .unavailable {
                // By type and operation only: an error's description can carry the request's body (a password).
                logger.error(
                    "request failed", metadata: ["operation": "\(operationID)", "error": "\(Self.kind(of: error))"])
            }
            return Self.response(failure)
        }
    }

    static func response(_ failure: APIFailure) -> (HTTPResponse, HTTPBody?) {
        let body = Components.Schemas.ErrorResponse(error: .init(code: failure.kind.code, message: failure.message))
        let data = (try? JSONEncoder().encode(body)) ?? Data()
        var response = HTTPResponse(status: .init(code: failure.kind.status))
        response.headerFields[.contentType] = "application/json; charset=utf-8"
        if let seconds = failure.retryAfterSeconds { response.headerFields[.retryAfter] = "\(seconds)" }
        return (response, HTTPBody(data))
    }

    /// What a log may say of an error: its type, and for the generated server's wrapper the type of its cause; a
    /// ``LoyaltyError`` (whose messages carry no secrets) with its code, message and the chain of its causes.
    static func kind(of error: any Error) -> String {
        switch error {
        case let error as ServerError: return "ServerError(\(kind(of: error.underlyingError)))"
        case let error as LoyaltyError:
            return "\(error.code): \(error.message)" + (error.cause.map { " (cause: \(kind(of: $0)))" } ?? "")
        case let error as DatabaseError:
            // SQLite's result code, message and statement; GRDB leaves the statement's arguments out.
            return "\(error)"
        default: return String(describing: type(of: error))
        }
    }

    static func failure(for error: any Error) -> APIFailure {
        switch error {
        case let failure as APIFailure: return failure
        case let error as ServerError:
            let underlying = failure(for: error.underlyingError)
            // The generated server failed before it could decode the operation's input (a missing header, an
            // unreadable body): that is the request's fault, whatever the runtime's internal error type.
            if underlying.kind == .internalError && error.operationInput == nil {
                return APIFailure(.badRequest, "the request is malformed: \(error.causeDescription)")
            }
            return underlying
        case let error as LoyaltyError where error.code == .malformed: return APIFailure(.badRequest, error.message)
        case let error as DecodingError: return APIFailure(.badRequest, describe(error))
        case let error as LoyaltyError where error.code == .duplicate: return APIFailure(.conflict, error.message)
        case let error as LoyaltyError where error.code == .unknownMember: return APIFailure(.notFound, error.message)
        case let error as LoyaltyError where error.code == .unavailable:
            // The database restarts or the pool is exhausted: devices back off and retry; nothing was acknowledged.
            var failure = APIFailure(
                .unavailable, "the server's database is not available right now: try again shortly")
            failure.retryAfterSeconds = 5
            return failure
        default:
            return APIFailure(.internalError, "the server failed to answer; it was logged and nothing was half-written")
        }
    }

    static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context, _ key: (any CodingKey)? = nil) -> String {
            let keys = context.codingPath + (key.map { [$0] } ?? [])
            let text = keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            return text.isEmpty ? "the body" : String(text.drop(while: { $0 == "." }))
        }
        switch error {
        case .keyNotFound(let key, let context):
            // The runtime reports an unknown `kind` of a mutation as a missing key; its description has the value.
            if context.debugDescription.contains("discriminator value") {
                let value = context.debugDescription.split(separator: "'").dropFirst().first.map(String.init) ?? "?"
                return "\(path(context, key)): unknown mutation kind \(value.quoted); known kinds: "
                    + LoyaltyCore.Mutation.kinds.joined(separator: ", ")
            }
            return "\(path(context, key)) is missing"
        case .typeMismatch(let type, let context): return "\(path(context)) has the wrong type (\(type) expected)"
        case .valueNotFound(let type, let context): return "\(path(context)) is null (\(type) expected)"
        case .dataCorrupted(let context):
            let reason = context.debugDescription
            return context.codingPath.isEmpty
                ? "the body is not valid JSON or has a field it may not have: \(reason)" : "\(path(context)): \(reason)"
        @unknown default: return "the body could not be read"
        }
    }
}
