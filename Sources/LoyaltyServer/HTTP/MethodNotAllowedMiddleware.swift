internal import Foundation
internal import HTTPTypes
internal import Hummingbird
internal import LoyaltyAPI
internal import NIOCore
internal import OpenAPIRuntime
internal import Synchronization

/// The contract's routes (path templates and their methods), read from the generated server's own registrations so
/// that they cannot differ from what docs/openapi.yaml declares.
struct ContractRoutes: Sendable {
    /// A path template split at `/`; a `{name}` segment matches any one segment.
    struct Route: Sendable {
        var segments: [String]
        var methods: Set<HTTPRequest.Method>
    }

    private(set) var routes: [Route] = []

    /// The routes the generated server registers for `handler`.
    init(of handler: some APIProtocol) throws {
        let recorder = Recorder()
        try handler.registerHandlers(on: recorder, serverURL: URL(string: "/")!)
        for (method, path) in recorder.registered.withLock({ $0 }) {
            let segments = path.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            if let index = routes.firstIndex(where: { $0.segments == segments }) {
                routes[index].methods.insert(method)
            } else {
                routes.append(Route(segments: segments, methods: [method]))
            }
        }
    }

    /// The methods the contract declares for `path`, or an empty set if it declares no such path.
    func methods(for path: String) -> Set<HTTPRequest.Method> {
        let segments = path.split(separator: "/", omittingEmptySubsequences: false)
        var methods: Set<HTTPRequest.Method> = []
        for route in routes where route.segments.count == segments.count {
            let matches = zip(route.segments, segments).allSatisfy { template, segment in
                (template.hasPrefix("{") && template.hasSuffix("}") && !segment.isEmpty) || template == segment
            }
            if matches { methods.formUnion(route.methods) }
        }
        return methods
    }

    /// A server transport that only notes what is registered on it.
    private final class Recorder: ServerTransport, Sendable {
        let registered = Mutex<[(HTTPRequest.Method, String)]>([])

        func register(
            _ handler:
                @Sendable @escaping (HTTPRequest, HTTPBody?, ServerRequestMetadata) async throws -> (
                    HTTPResponse, HTTPBody?
                ),
            method: HTTPRequest.Method, path: String
        ) throws {
            registered.withLock { $0.append((method, path)) }
        }
    }
}

/// Answers a request for a path the contract declares, with a method it does not declare for it, with 405 and
/// `Allow` listing the declared methods (RFC 9110, 15.5.6); a path the contract does not know stays a 404.
///
/// It looks only at what the router could not match (its 404), so a request that reaches an operation costs nothing.
struct MethodNotAllowedMiddleware: RouterMiddleware {
    typealias Context = LoyaltyRequestContext
    let routes: ContractRoutes

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound {
            let allowed = routes.methods(for: request.uri.path)
            guard !allowed.isEmpty, !allowed.contains(request.method),
                !(request.method == .head && allowed.contains(.get))
            else { throw error }
            let list = allowed.map(\.rawValue).sorted().joined(separator: ", ")
            let body =
                #"{"error":{"code":"method_not_allowed","message":"\#(request.uri.path.jsonEscapedForMessage) answers \#(list) only"}}"#
            return Response(
                status: .methodNotAllowed,
                headers: [.contentType: "application/json; charset=utf-8", .allow: list],
                body: .init(byteBuffer: ByteBuffer(string: body)))
        }
    }
}

extension String {
    /// The string as the inside of a JSON string, cut to 100 characters (a path is the client's input).
    fileprivate var jsonEscapedForMessage: String {
        let data = (try? JSONEncoder().encode(String(prefix(100)))) ?? Data("\"\"".utf8)
        return String(decoding: data.dropFirst().dropLast(), as: UTF8.self)
    }
}
