internal import Foundation
internal import LoyaltySync

/// Where a command's output goes: one JSON document with `--json`, readable text otherwise. Colours only on a
/// terminal, and never with `NO_COLOR` set.
struct Output: Sendable {
    let json: Bool
    let colours: Bool
    let isTerminal: Bool

    init(json: Bool) {
        self.json = json
        self.isTerminal = isatty(STDOUT_FILENO) == 1
        self.colours = !json && isTerminal && ProcessInfo.processInfo.environment["NO_COLOR"] == nil
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

    /// A line of a story the command tells (the demo): printed unless `--json`.
    func narrate(_ line: String) {
        guard !json else { return }
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }

    /// Progress of long work, rewritten in place: only on a terminal, never with `--json`.
    func progress(_ line: String) {
        guard !json, isTerminal else { return }
        FileHandle.standardOutput.write(Data("\r\u{1B}[2K\(line)".utf8))
    }

    /// Ends a progress line.
    func endProgress() {
        guard !json, isTerminal else { return }
        FileHandle.standardOutput.write(Data("\r\u{1B}[2K".utf8))
    }

    /// A sync progress reporter for the engine.
    var syncProgress: @Sendable (SyncReport) -> Void {
        let output = self
        return { report in output.progress("syncing: \(report.pushed) pushed, \(report.pulled) changes pulled ...") }
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
