internal import Hummingbird
internal import NIOCore

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
