internal import ArgumentParser
internal import Foundation
internal import LoyaltyAPI
internal import LoyaltyCore
internal import LoyaltySync

/// The member's data rights (docs/privacy.md).
struct Privacy: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "privacy", abstract: "The member's data rights: a copy of everything the programme holds.",
        subcommands: [Export.self, Erase.self])

    struct Erase: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Ask for the member's data to be erased (GDPR Art. 17). Works offline; cannot be undone.",
            discussion: """
                The request is queued like any action and done when it reaches the server: the profile, e-mail and \
                password are removed, the points left are forfeited, and every device of the member is signed out \
                and wiped. Until then `loyalty status` shows "erasure requested". docs/privacy.md, "Erasure".
                """)
        @OptionGroup var global: GlobalOptions
        @Flag(help: "Confirm: the erasure cannot be undone.") var yes = false

        func validate() throws {
            guard yes else {
                throw ValidationError(
                    "Erasure cannot be undone: the points are forfeited and every device is signed out. Add --yes.")
            }
        }

        func run() async throws {
            try await act(
                .requestErasure, global: global,
                done: "Erasure requested: it is done when this device next syncs, then every device is signed out")
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Everything the programme holds about the member, as one JSON document (needs the network).",
            discussion: """
                The document's format and version are in docs/privacy.md: profile, consent history, cards, points \
                (lots and movements), vouchers, receipts, survey answers, devices and the analysis. Without --out \
                it is printed. The file is readable by its owner only.
                Example: loyalty privacy export --out my-data.json
                """)
        @OptionGroup var global: GlobalOptions
        @Option(help: "Write the document to this file (created; an existing file is not overwritten).")
        var out: String?
        @OptionGroup var format: ExportFormat

        func validate() throws { try format.validate(out: out) }

        func run() async throws {
            let document: Data
            do {
                document = try await global.context().engine().exportData()
            } catch let error as LoyaltyError {
                throw error
            } catch {
                throw LoyaltyError("failed", "the export is not available: \(error)", cause: error)
            }
            try deliverExport(document, as: format.format, to: out, output: global.output)
        }
    }
}

/// How an export is written: the JSON document, or a zip of CSV files.
struct ExportFormat: ParsableArguments {
    @Option(help: "json (one document) or csv (a zip of CSV files, one per kind of record; needs --out).")
    var format = "json"

    func validate(out: String?) throws {
        guard ["json", "csv"].contains(format) else {
            throw ValidationError("--format must be json or csv (got \(format.quoted)).")
        }
        if format == "csv" && out == nil {
            throw ValidationError("--format csv writes a zip archive: give --out FILE.")
        }
    }
}

/// Writes an export to a new owner-only file (the JSON document, or a zip of CSV files), or prints the document;
/// says what it holds.
func deliverExport(_ json: Data, as format: String, to path: String?, output: Output) throws {
    guard let path else {
        FileHandle.standardOutput.write(json + Data("\n".utf8))
        return
    }
    let document = format == "csv" ? try ExportCSV.archive(of: json) : json
    let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
    guard descriptor >= 0 else {
        throw LoyaltyError(
            "cannot_write", "cannot create \(path): \(String(cString: strerror(errno))) (an existing file is kept)")
    }
    defer { close(descriptor) }
    let written = document.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
    guard written == document.count else {
        unlink(path)
        throw LoyaltyError("cannot_write", "cannot write \(path): \(String(cString: strerror(errno)))")
    }
    let counts = (try? JSONSerialization.jsonObject(with: json)) as? [String: Any] ?? [:]
    func count(_ key: String) -> Int { (counts[key] as? [Any])?.count ?? 0 }
    func counted(_ key: String, _ one: String, _ many: String) -> String {
        "\(count(key)) \(count(key) == 1 ? one : many)"
    }
    output.emit(
        ["file": path, "bytes": document.count, "movements": count("movements"), "consents": count("consents")],
        text: "Exported to \(path) (\(format == "csv" ? "a zip of CSV files, " : "")\(document.count) bytes): "
            + "\(counted("movements", "point movement", "point movements")), "
            + "\(counted("consents", "consent decision", "consent decisions")), "
            + "\(counted("devices", "device", "devices")).")
}
