internal import HTTPTypes
public import Hummingbird
public import Logging
internal import LoyaltyCore

/// The id of the request being answered, on every log line written while it is (the service's and the store's): a
/// `Logger.MetadataProvider` reads it from the task.
public enum RequestID {
    /// The id of the request the task answers; nil outside a request.
    @TaskLocal public static var current: String?

    /// Adds `request` (the id) to every log line written while a request is answered.
    public static let metadataProvider = Logger.MetadataProvider {
        current.map { ["request": .string($0)] } ?? [:]
    }

    /// The id a client sent in `X-Request-ID`, if it is one this server repeats (1 to 64 letters, digits, `.`, `_`
    /// or `-`: nothing a log line could be forged with), or a new one.
    static func id(offered: String?) -> String {
        if let offered, (1...64).contains(offered.utf8.count),
            offered.unicodeScalars.allSatisfy({
                $0.isASCII
                    && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "._-".unicodeScalars.contains($0))
            })
        {
            return offered
        }
        var random = SystemRandomNumberGenerator()
        return String(random.next(), radix: 16).leftPadded(to: 16)
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}

/// Gives each request an id (the client's `X-Request-ID` if well formed), makes it the task's ``RequestID/current``
/// for the rest of the request, answers it in `X-Request-ID`, and logs the request's outcome and time at debug.
struct RequestIDMiddleware: RouterMiddleware {
    typealias Context = LoyaltyRequestContext
    let logger: Logger

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let id = RequestID.id(offered: request.headers[.xRequestID])
        return try await RequestID.$current.withValue(id) {
            let started = ContinuousClock.now
            do {
                var response = try await next(request, context)
                response.headers[.xRequestID] = id
                logger.debug(
                    "request",
                    metadata: [
                        "method": "\(request.method)", "path": "\(request.uri.path)",
                        "status": "\(response.status.code)", "duration": "\(ContinuousClock.now - started)",
                    ])
                return response
            } catch {
                logger.debug(
                    "request",
                    metadata: ["method": "\(request.method)", "path": "\(request.uri.path)", "failed": "true"])
                throw error
            }
        }
    }
}

extension HTTPField.Name {
    /// `X-Request-ID`: the id of a request, sent by a client or a proxy, answered by the server.
    static let xRequestID = HTTPField.Name("X-Request-ID")!
}
