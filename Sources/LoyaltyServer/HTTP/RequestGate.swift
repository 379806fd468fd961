public import Foundation
public import HTTPTypes
internal import Logging
internal import LoyaltyAPI
internal import LoyaltyCore
public import OpenAPIRuntime
internal import Prometheus

/// What the gate learned about the caller, for the handler of this request.
enum RequestContext {
    /// The calling device, for device operations.
    @TaskLocal static var device: DeviceRecord?
}

/// Checks every request before its body is decoded: the protocol version of device operations (426 if
/// unsupported), the body size (413), and the caller: a device's access token for device operations, the
/// operator token for admin operations (401).
struct GateMiddleware: ServerMiddleware {
    let service: SyncService
    let configuration: ServerConfiguration

    static let protocolOperations: Set<String> = [
        "enroll", "login", "refresh", "changePassword", "signOutEverywhere", "listDevices", "revokeDevice", "push",
        "pull",
    ]
    static let deviceOperations: Set<String> = [
        "changePassword", "signOutEverywhere", "listDevices", "revokeDevice", "push", "pull",
    ]
    /// Operations limited per client address (``SignInLimits``).
    static let signInOperations: Set<String> = ["enroll", "login", "refresh", "changePassword"]
    static let protocolHeader = HTTPField.Name("Loyalty-Protocol")!

    func intercept(
        _ request: HTTPRequest, body: HTTPBody?, metadata: ServerRequestMetadata, operationID: String,
        next: @Sendable (HTTPRequest, HTTPBody?, ServerRequestMetadata) async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> (HTTPResponse, HTTPBody?) {
        if Self.signInOperations.contains(operationID) {
            try service.limiter.admit(address: ClientAddress.current ?? "in-process", at: service.clock.now())
        }
        if Self.protocolOperations.contains(operationID) {
            let version = request.headerFields[Self.protocolHeader]
            guard let version, configuration.protocolVersions.contains(version) else {
                let supported = configuration.protocolVersions.sorted().joined(separator: ", ")
                throw APIFailure(
                    .upgradeRequired,
                    "this server speaks sync protocol \(supported), the app sent \(version.map { $0.quoted } ?? "none"): "
                        + "update the app (its data and unsent changes are kept)")
            }
        }
        // The caller is checked before the body is read: an unauthorised client cannot make the server take in
        // a large body.
        var device: DeviceRecord?
        if Self.deviceOperations.contains(operationID) {
            device = try await service.authenticate(accessToken: try bearer(request, purpose: "a device access token"))
        }
        if operationID.hasPrefix("admin") || (operationID == "metrics" && !configuration.publicMetrics) {
            guard let expected = configuration.adminToken else {
                throw APIFailure(
                    .unauthorized,
                    "the admin API is off: start the server with LOYALTY_ADMIN_TOKEN, --admin-token-file or "
                        + "--admin-token")
            }
            let given = try bearer(request, purpose: "the operator token")
            guard constantTimeEqual(Array(given.utf8), Array(expected.utf8)) else {
                throw APIFailure(.unauthorized, "the operator token is wrong")
            }
        }
        var limitedBody = body
        if let body {
            do {
                limitedBody = HTTPBody(try await Data(collecting: body, upTo: configuration.maxBodyBytes))
            } catch  where String(describing: type(of: error)) == "TooManyBytesError" {
                // The runtime's error type is private; anything else (a dropped connection) is rethrown.
                throw APIFailure(.tooLarge, "the request body is over \(configuration.maxBodyBytes) bytes")
            }
        }
        guard let device else { return try await next(request, limitedBody, metadata) }
        return try await RequestContext.$device.withValue(device) { try await next(request, limitedBody, metadata) }
    }

    private func bearer(_ request: HTTPRequest, purpose: String) throws -> String {
        guard let header = request.headerFields[.authorization], header.hasPrefix("Bearer "), header.count > 7 else {
            throw APIFailure(.unauthorized, "send \(purpose) as 'Authorization: Bearer <token>'")
        }
        return String(header.dropFirst(7))
    }
}

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

    /// What a log may say of an error: its type, and for the generated server's wrapper the type of its cause.
    static func kind(of error: any Error) -> String {
        if let error = error as? ServerError {
            return "ServerError(\(type(of: error.underlyingError)))"
        }
        return String(describing: type(of: error))
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
        case let error as WireError: return APIFailure(.badRequest, error.message)
        case let error as DecodingError: return APIFailure(.badRequest, describe(error))
        case StorageError.duplicate(let what): return APIFailure(.conflict, "\(what) exists already")
        case StorageError.unknownMember(let id): return APIFailure(.notFound, "there is no member \(id)")
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
