internal import Foundation
internal import LoyaltyCore

/// A PostgreSQL connection URL, `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=disable|require]` (or
/// `postgresql://`), taken apart. Its ``description`` never shows the password: it is what a log or an error
/// message may print.
public struct DatabaseURL: Sendable, Hashable, CustomStringConvertible {
    /// How the connection is encrypted.
    public enum TLSMode: String, Sendable, Hashable {
        /// Plain TCP (loopback, a private network, a Unix socket).
        case disable
        /// TLS if the server offers it.
        case prefer
        /// TLS, or no connection.
        case require
    }

    public var user: String
    /// The password, if the URL has one (never printed).
    public var password: String?
    public var host: String
    public var port: Int
    public var database: String
    public var tls: TLSMode

    /// Parses a URL, or names what is wrong with it (without echoing a password).
    public init(parsing text: String) throws {
        let problem = { (what: String) in
            LoyaltyError(
                .invalidInput,
                "the database URL \(Self.redacted(text)) \(what); expected "
                    + "postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE")
        }
        guard let components = URLComponents(string: text) else { throw problem("is not a URL") }
        guard let scheme = components.scheme?.lowercased(), scheme == "postgres" || scheme == "postgresql" else {
            throw problem("does not start with postgres://")
        }
        guard let user = components.user, !user.isEmpty else { throw problem("names no user") }
        guard let host = components.host, !host.isEmpty else { throw problem("names no host") }
        let database = String(components.path.drop(while: { $0 == "/" }))
        guard !database.isEmpty, !database.contains("/") else { throw problem("names no database") }
        let port = components.port ?? 5432
        guard (1...65535).contains(port) else { throw problem("has a port outside 1...65535") }
        var tls = TLSMode.prefer
        for item in components.queryItems ?? [] {
            switch (item.name, item.value) {
            case ("sslmode", let value?):
                guard let mode = TLSMode(rawValue: value) else {
                    throw problem("has sslmode=\(value) (disable, prefer or require are understood)")
                }
                tls = mode
            default: throw problem("has an option \(item.name) this server does not understand (only sslmode)")
            }
        }
        self.user = components.user?.removingPercentEncoding ?? user
        self.password = components.password?.removingPercentEncoding
        self.host = host
        self.port = port
        self.database = database.removingPercentEncoding ?? database
        self.tls = tls
    }

    /// The URL with the password replaced by `***`.
    public var description: String {
        "postgres://\(user)\(password == nil ? "" : ":***")@\(host):\(port)/\(database)"
            + (tls == .prefer ? "" : "?sslmode=\(tls.rawValue)")
    }

    /// A URL that did not parse, its password (between `:` after the scheme's `//` and `@`) hidden.
    static func redacted(_ text: String) -> String {
        guard let schemeEnd = text.range(of: "://"), let at = text.range(of: "@", options: .backwards),
            at.lowerBound > schemeEnd.upperBound
        else { return text.contains("@") ? "(not shown: it may hold a password)" : text }
        let credentials = text[schemeEnd.upperBound..<at.lowerBound]
        guard let colon = credentials.firstIndex(of: ":") else { return text }
        return text[..<colon] + ":***" + text[at.lowerBound...]
    }
}
