public import Foundation

/// A failure the CLI reports: a stable code, a message, and the exit status (1 for refusals and failures).
public struct CLIError: Error, Sendable, CustomStringConvertible {
    public var code: String
    public var message: String

    public init(_ code: String, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}

/// Where a command's output goes: one JSON document with `--json`, readable text otherwise. Colours only on a
/// terminal, and never with `NO_COLOR` set.
struct Output: Sendable {
    let json: Bool
    let colours: Bool

    init(json: Bool) {
        self.json = json
        self.colours = !json && isatty(STDOUT_FILENO) == 1 && ProcessInfo.processInfo.environment["NO_COLOR"] == nil
    }

    /// Prints the command's result.
    func emit(_ document: [String: Any], text: @autoclosure () -> String) {
        if json {
            let data =
                (try? JSONSerialization.data(withJSONObject: document, options: [.sortedKeys, .prettyPrinted]))
                ?? Data()
            FileHandle.standardOutput.write(data + Data("\n".utf8))
        } else {
            FileHandle.standardOutput.write(Data((text() + "\n").utf8))
        }
    }

    /// Progress for long work: only on a terminal, never with `--json`.
    func progress(_ line: String) {
        guard !json else { return }
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }

    func bold(_ text: String) -> String { colours ? "\u{1B}[1m\(text)\u{1B}[0m" : text }
    func green(_ text: String) -> String { colours ? "\u{1B}[32m\(text)\u{1B}[0m" : text }
    func red(_ text: String) -> String { colours ? "\u{1B}[31m\(text)\u{1B}[0m" : text }
    func dim(_ text: String) -> String { colours ? "\u{1B}[2m\(text)\u{1B}[0m" : text }
}

/// Pads for table columns.
func pad(_ text: String, _ width: Int) -> String {
    text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
}
