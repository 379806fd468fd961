public import Hummingbird
internal import NIOCore

/// The address of the client of the request being answered, for rate limits and the security log.
public enum ClientAddress {
    /// The client's IP address, while a request from the network is answered; nil in-process.
    @TaskLocal public static var current: String?
}

/// The request context of the server: Hummingbird's, and the address of the connection's other end.
public struct LoyaltyRequestContext: Hummingbird.RequestContext, RemoteAddressRequestContext {
    /// Hummingbird's part of the context.
    public var coreContext: CoreRequestContextStorage
    /// The address of the connection's other end.
    public let remoteAddress: SocketAddress?

    /// The context of a request on a connection.
    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }
}

/// Makes the connection's address the task's ``ClientAddress/current`` for the rest of the request.
struct ClientAddressMiddleware: RouterMiddleware {
    typealias Context = LoyaltyRequestContext

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        try await ClientAddress.$current.withValue(context.remoteAddress?.ipAddress) {
            try await next(request, context)
        }
    }
}
