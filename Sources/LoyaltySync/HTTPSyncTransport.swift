public import Foundation
internal import HTTPTypes
internal import LoyaltyAPI
public import LoyaltyCore
internal import OpenAPIRuntime
internal import OpenAPIURLSession

#if canImport(FoundationNetworking)
internal import FoundationNetworking
#endif

/// The real transport: the client generated from docs/openapi.yaml, over URLSession (libcurl on Linux).
public struct HTTPSyncTransport: SyncTransport {
    private let client: Client
    private let transport: URLSessionTransport
    private let serverURL: URL

    /// A transport to the server at `serverURL`.
    public init(serverURL: URL, timeout: TimeInterval = 30) {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = timeout
        let session = URLSession(configuration: configuration)
        self.serverURL = serverURL
        transport = URLSessionTransport(configuration: .init(session: session))
        client = Client(
            serverURL: serverURL, configuration: .loyalty, transport: transport,
            middlewares: [AuthorizationMiddleware(), ErrorMiddleware()])
    }

    public func enroll(
        _ registration: Registration, password: String, deviceName: String?
    ) async throws(TransportError) -> SessionGrant {
        try await call {
            let response = try await client.enroll(
                headers: .init(loyaltyProtocol: loyaltyProtocolVersion),
                body: .json(
                    .init(
                        name: registration.name, email: registration.email, password: password,
                        phone: registration.phone,
                        birthdate: registration.birthdate, address: registration.address, deviceName: deviceName)))
            return SessionGrant(wire: try response.created.body.json)
        }
    }

    public func login(email: String, password: String, deviceName: String?) async throws(TransportError) -> SessionGrant
    {
        try await call {
            let response = try await client.login(
                headers: .init(loyaltyProtocol: loyaltyProtocolVersion),
                body: .json(.init(email: email, password: password, deviceName: deviceName)))
            return SessionGrant(wire: try response.ok.body.json)
        }
    }

    public func refresh(refreshToken: String) async throws(TransportError) -> SessionGrant {
        try await call {
            let response = try await client.refresh(
                headers: .init(loyaltyProtocol: loyaltyProtocolVersion), body: .json(.init(refreshToken: refreshToken)))
            return SessionGrant(wire: try response.ok.body.json)
        }
    }

    public func push(_ request: PushRequest, accessToken: String) async throws(TransportError) -> PushResponse {
        try await call(token: accessToken) {
            let response = try await client.push(
                headers: .init(loyaltyProtocol: loyaltyProtocolVersion), body: .json(request.wire))
            return try PushResponse(wire: try response.ok.body.json)
        }
    }

    /// A pull goes past the generated client: its answer is read by ``PullJSON``, which decodes each entity once,
    /// as its kind (the generated types decode it as a generic object that would then be re-encoded and decoded).
    public func pull(_ request: PullRequest, accessToken: String) async throws(TransportError) -> PullResponse {
        try await pull(request, accessToken: accessToken) { _, _ in }
    }

    public func pull(
        _ request: PullRequest, accessToken: String, early: @escaping @Sendable (Cursor, _ hasMore: Bool) -> Void
    ) async throws(TransportError) -> PullResponse {
        try await call {
            var head = HTTPRequest(method: .post, scheme: nil, authority: nil, path: "/v1/sync/pull")
            head.headerFields[.contentType] = "application/json; charset=utf-8"
            head.headerFields[.accept] = "application/json"
            head.headerFields[.authorization] = "Bearer \(accessToken)"
            head.headerFields[HTTPField.Name("Loyalty-Protocol")!] = loyaltyProtocolVersion
            let (response, body) = try await transport.send(
                head, body: HTTPBody(try JSONEncoder().encode(request.wire)), baseURL: serverURL, operationID: "pull")
            try await ErrorMiddleware.check(response, body: body)
            guard response.status == .ok, let body else {
                throw TransportError.refused(
                    status: response.status.code, code: "bad_response",
                    message: "the server answered a pull with \(response.status.code) and no page")
            }
            let data = try await Data(collecting: body, upTo: Self.maxPageBytes)
            // The cursor is read from the answer's end before its changes are decoded (a few milliseconds for a
            // large page), so that the next page is already asked for while this one is read.
            let peeked = PullJSON.peekCursor(data)
            if let peeked { early(peeked.cursor, peeked.hasMore) }
            let page = try PullJSON.decode(data)
            if peeked == nil { early(page.cursor, page.hasMore) }
            return page
        }
    }

    /// The largest pull answer read (a page of the server's largest page size is far below it).
    static let maxPageBytes = 256 << 20

    public func devices(accessToken: String) async throws(TransportError) -> [DeviceSummary] {
        try await call(token: accessToken) {
            let response = try await client.listDevices(headers: .init(loyaltyProtocol: loyaltyProtocolVersion))
            let devices: [Components.Schemas.Device] = try response.ok.body.json.devices
            return devices.map { device -> DeviceSummary in
                DeviceSummary(
                    id: DeviceID(device.id), name: device.name, createdAt: Timestamp(device.createdAt),
                    revokedAt: device.revokedAt.map { Timestamp($0) },
                    lastSeenAt: device.lastSeenAt.map { Timestamp($0) },
                    isCurrent: device.current)
            }
        }
    }

    public func revoke(device: DeviceID, accessToken: String) async throws(TransportError) {
        try await call(token: accessToken) {
            _ = try await client.revokeDevice(
                path: .init(deviceID: device.rawValue), headers: .init(loyaltyProtocol: loyaltyProtocolVersion)
            ).noContent
        }
    }

    public func changePassword(current: String, new: String, accessToken: String) async throws(TransportError) {
        try await call(token: accessToken) {
            _ = try await client.changePassword(
                headers: .init(loyaltyProtocol: loyaltyProtocolVersion),
                body: .json(.init(currentPassword: current, newPassword: new))
            ).noContent
        }
    }

    public func exportData(accessToken: String) async throws(TransportError) -> Data {
        try await call(token: accessToken) {
            try await client.exportMyData(headers: .init(loyaltyProtocol: loyaltyProtocolVersion)).ok.body.json
                .document()
        }
    }

    public func signOutEverywhere(accessToken: String) async throws(TransportError) {
        try await call(token: accessToken) {
            _ = try await client.signOutEverywhere(headers: .init(loyaltyProtocol: loyaltyProtocolVersion)).noContent
        }
    }

    /// Runs a call and turns every failure into a ``TransportError``.
    private func call<T: Sendable>(
        token: String? = nil, _ body: @Sendable () async throws -> T
    ) async throws(TransportError) -> T {
        do {
            return try await AuthorizationMiddleware.$token.withValue(token) { try await body() }
        } catch {
            throw Self.transportError(error)
        }
    }

    static func transportError(_ error: any Error) -> TransportError {
        if let error = error as? TransportError { return error }
        if let error = error as? ClientError { return transportError(error.underlyingError) }
        if let error = error as? URLError { return .unreachable(error.localizedDescription, cause: error) }
        let text = String(describing: error)
        if text.contains("NSURLErrorDomain") || text.contains("URLError") {
            return .unreachable("no connection", cause: error)
        }
        return TransportError(
            .refused, code: "bad_response", "the server's answer could not be read: \(text.prefix(200))", status: 0,
            cause: error)
    }
}

/// Sends the access token of the current call.
struct AuthorizationMiddleware: ClientMiddleware {
    @TaskLocal static var token: String?

    func intercept(
        _ request: HTTPRequest, body: HTTPBody?, baseURL: URL, operationID: String,
        next: @Sendable (HTTPRequest, HTTPBody?, URL) async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> (HTTPResponse, HTTPBody?) {
        var request = request
        if let token = Self.token { request.headerFields[.authorization] = "Bearer \(token)" }
        return try await next(request, body, baseURL)
    }
}

/// Turns an error answer (`{"error": {"code", "message"}}` with a 4xx or 5xx status) into a ``TransportError``.
struct ErrorMiddleware: ClientMiddleware {
    func intercept(
        _ request: HTTPRequest, body: HTTPBody?, baseURL: URL, operationID: String,
        next: @Sendable (HTTPRequest, HTTPBody?, URL) async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> (HTTPResponse, HTTPBody?) {
        let (response, responseBody) = try await next(request, body, baseURL)
        try await Self.check(response, body: responseBody)
        return (response, responseBody)
    }

    /// Throws the ``TransportError`` an error answer says; returns for any other answer.
    static func check(_ response: HTTPResponse, body responseBody: HTTPBody?) async throws(TransportError) {
        let status = response.status.code
        guard status >= 400 else { return }
        var code = "http_\(status)"
        var message = "the server answered \(status)"
        if let responseBody, let data = try? await Data(collecting: responseBody, upTo: 1 << 16),
            let error = try? JSONDecoder().decode(Components.Schemas.ErrorResponse.self, from: data)
        {
            code = error.error.code
            message = error.error.message
        }
        throw TransportError(status: status, code: code, message: message)
    }
}

extension SessionGrant {
    init(wire: Components.Schemas.Session) {
        self.init(
            memberID: MemberID(wire.memberID), deviceID: DeviceID(wire.deviceID), cardNumber: wire.cardNumber,
            accessToken: wire.accessToken, accessTokenExpiresAt: Timestamp(wire.accessTokenExpiresAt),
            refreshToken: wire.refreshToken, serverTime: Timestamp(wire.serverTime))
    }
}
