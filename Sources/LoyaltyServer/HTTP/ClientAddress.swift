public import Hummingbird
internal import NIOCore

/// The address of the client of the request being answered, for rate limits and the security log.
public enum ClientAddress {
    /// The client's IP address, while a request from the network is answered; nil in-process.
    @TaskLocal public static var current: String?
}

/// The request context of the server: Hummingbird's, and the address of the connection's other end.
public struct LoyaltyRequestContext: Hummingbird.RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?

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

/// Answers a request whose declared body is over the limit with 413 before anything reads it, after reading and
/// discarding what the client sends (up to `drainLimit`), then closes the connection: a client that sends its whole
/// body before it reads (as simple clients do) gets the answer instead of waiting on a full socket.
struct BodyLimitMiddleware: RouterMiddleware {
    typealias Context = LoyaltyRequestContext
    let maxBodyBytes: Int
    /// Most bytes read and thrown away to deliver the answer; beyond it the connection is simply closed.
    let drainLimit = 64 << 20

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        guard let declared = request.headers[.contentLength].flatMap(Int.init), declared > maxBodyBytes else {
            return try await next(request, context)
        }
        if declared <= drainLimit {
            for try await _ in request.body {}
        }
        let body = #"{"error":{"code":"too_large","message":"the request body is over \#(maxBodyBytes) bytes"}}"#
        return Response(
            status: .contentTooLarge,
            headers: [.contentType: "application/json; charset=utf-8", .connection: "close"],
            body: .init(byteBuffer: ByteBuffer(string: body)))
    }
}
