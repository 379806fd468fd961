public import Foundation
public import LoyaltyCore

/// A transport with hooks around every call: where a simulated network goes (switched off, failing, losing
/// answers). The terminal client switches its network off this way; tests and the simulation inject faults.
public struct InterposedTransport: SyncTransport {
    /// The calls, as the hooks see them.
    public enum Call: String, Sendable, Hashable {
        case enroll, login, refresh, push, pull, devices, revoke
    }

    private let base: any SyncTransport
    private let before: @Sendable (Call) throws(TransportError) -> Void
    private let loseAnswer: @Sendable (Call) -> Bool

    /// Wraps `base`. `before` may throw to fail a call before it is sent; `loseAnswer` returning true drops the
    /// answer of a call the server has already carried out (it then looks like a network failure).
    public init(
        _ base: any SyncTransport, before: @escaping @Sendable (Call) throws(TransportError) -> Void = { _ in },
        loseAnswer: @escaping @Sendable (Call) -> Bool = { _ in false }
    ) {
        self.base = base
        self.before = before
        self.loseAnswer = loseAnswer
    }

    private func around<T: Sendable>(
        _ call: Call, _ body: () async throws(TransportError) -> T
    ) async throws(TransportError) -> T {
        try before(call)
        let answer = try await body()
        if loseAnswer(call) { throw .unreachable("the connection was reset before the answer arrived") }
        return answer
    }

    public func enroll(
        _ registration: Registration, password: String, deviceName: String?
    ) async throws(TransportError)
        -> SessionGrant
    {
        try await around(.enroll) { () async throws(TransportError) in
            try await base.enroll(registration, password: password, deviceName: deviceName)
        }
    }

    public func login(email: String, password: String, deviceName: String?) async throws(TransportError) -> SessionGrant
    {
        try await around(.login) { () async throws(TransportError) in
            try await base.login(email: email, password: password, deviceName: deviceName)
        }
    }

    public func refresh(refreshToken: String) async throws(TransportError) -> SessionGrant {
        try await around(.refresh) { () async throws(TransportError) in
            try await base.refresh(refreshToken: refreshToken)
        }
    }

    public func push(_ request: PushRequest, accessToken: String) async throws(TransportError) -> PushResponse {
        try await around(.push) { () async throws(TransportError) in
            try await base.push(request, accessToken: accessToken)
        }
    }

    public func pull(_ request: PullRequest, accessToken: String) async throws(TransportError) -> PullResponse {
        try await around(.pull) { () async throws(TransportError) in
            try await base.pull(request, accessToken: accessToken)
        }
    }

    public func pull(
        _ request: PullRequest, accessToken: String, early: @escaping @Sendable (Cursor, _ hasMore: Bool) -> Void
    ) async throws(TransportError) -> PullResponse {
        try await around(.pull) { () async throws(TransportError) in
            try await base.pull(request, accessToken: accessToken, early: early)
        }
    }

    public func devices(accessToken: String) async throws(TransportError) -> [DeviceSummary] {
        try await around(.devices) { () async throws(TransportError) in try await base.devices(accessToken: accessToken)
        }
    }

    public func revoke(device: DeviceID, accessToken: String) async throws(TransportError) {
        try await around(.revoke) { () async throws(TransportError) in
            try await base.revoke(device: device, accessToken: accessToken)
        }
    }

    public func changePassword(current: String, new: String, accessToken: String) async throws(TransportError) {
        try await around(.devices) { () async throws(TransportError) in
            try await base.changePassword(current: current, new: new, accessToken: accessToken)
        }
    }

    public func exportData(accessToken: String) async throws(TransportError) -> Data {
        try await around(.revoke) { () async throws(TransportError) in
            try await base.exportData(accessToken: accessToken)
        }
    }

    public func signOutEverywhere(accessToken: String) async throws(TransportError) {
        try await around(.revoke) { () async throws(TransportError) in
            try await base.signOutEverywhere(accessToken: accessToken)
        }
    }
}
