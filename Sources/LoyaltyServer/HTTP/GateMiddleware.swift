internal import Foundation
internal import HTTPTypes
internal import Logging
internal import LoyaltyAPI
internal import LoyaltyCore
internal import OpenAPIRuntime
internal import Prometheus

/// What the gate learned about the caller, for the handler of this request.
enum RequestContext {
    /// The calling device, for device operations.
    @TaskLocal static var device: DeviceRecord?
    /// The member and device of a push's or a pull's access token (each reads the device's row with its own work).
    @TaskLocal static var credentials: Credentials?
}

/// Checks every request before its body is decoded: the protocol version of device operations (426 if
/// unsupported), the body size (413), and the caller: a device's access token for device operations, the
/// operator token for admin operations (401).
struct GateMiddleware: ServerMiddleware {
    let service: SyncService
    let configuration: ServerConfiguration

    static let protocolOperations: Set<String> = [
        "enroll", "login", "refresh", "changePassword", "signOutEverywhere", "listDevices", "revokeDevice", "push",
        "pull", "exportMyData",
    ]
    static let deviceOperations: Set<String> = [
        "changePassword", "signOutEverywhere", "listDevices", "revokeDevice", "push", "pull", "exportMyData",
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
            // Absent, the request is malformed (every app sends it); another version is an app to update.
            let supported = configuration.protocolVersions.sorted().joined(separator: ", ")
            guard let version = request.headerFields[Self.protocolHeader] else {
                throw APIFailure(
                    .badRequest, "the Loyalty-Protocol header is missing: this server speaks sync protocol \(supported)"
                )
            }
            guard configuration.protocolVersions.contains(version) else {
                throw APIFailure(
                    .upgradeRequired,
                    "this server speaks sync protocol \(supported), the app sent \(version.quoted): "
                        + "update the app (its data and unsent changes are kept)")
            }
        }
        // The caller is checked before the body is read: an unauthorised client cannot make the server take in
        // a large body.
        var device: DeviceRecord?
        var credentials: Credentials?
        if operationID == "push" || operationID == "pull" {
            credentials = try service.verify(accessToken: try bearer(request, purpose: "a device access token"))
        } else if Self.deviceOperations.contains(operationID) {
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
        if let credentials {
            return try await RequestContext.$credentials.withValue(credentials) {
                try await next(request, limitedBody, metadata)
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
