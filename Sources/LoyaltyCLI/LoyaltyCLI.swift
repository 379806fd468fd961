public import ArgumentParser
internal import Foundation
internal import LoyaltyCore

/// The `loyalty` command: the member's app on a terminal, one device per directory, plus the operator console
/// (`loyalty admin`) and the demo (`loyalty demo`).
public struct LoyaltyCLI: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "loyalty",
        abstract: "The Loyalty app on a terminal: one simulated device per directory.",
        discussion: """
            Every member action works offline: it is applied at once and queued; 'loyalty sync' sends it and brings \
            back what the server decided. Start with 'loyalty demo' to watch two devices go through an offline story.

            Examples:
              loyalty demo
              loyalty --device ./phone enroll --server http://127.0.0.1:8080 --name "Anna Schmidt" --email anna@example.de --password 'correct horse'
              loyalty --device ./phone network off
              loyalty --device ./phone reward redeem tote-bag
              loyalty --device ./phone --json balance

            Global options (before or after the command): --device DIR (default $LOYALTY_DEVICE, else \
            ~/.loyalty/device) and --json.

            Exit codes: 0 done, 1 refused or failed, 2 usage error. With --json every command prints exactly one \
            JSON document on stdout; errors are {"error": {"code", "message"}}.
            """,
        version: loyaltyVersion,
        subcommands: [
            Demo.self, Enroll.self, Login.self, Logout.self, PasswordCommand.self, SignOutEverywhere.self,
            Network.self, ClockCommand.self, Sync.self, Status.self,
            CardCommand.self, Balance.self, History.self, Offers.self, OfferCommand.self, Rewards.self,
            RewardCommand.self,
            Vouchers.self, ReceiptCommand.self, Surveys.self, SurveyCommand.self, ProfileCommand.self, Consents.self,
            ConsentCommand.self, Notices.self, Devices.self, DeviceCommand.self, Privacy.self, Admin.self,
        ])

    /// The command, before ArgumentParser fills in its options.
    public init() {}

    /// Parses the arguments, runs the command, and exits with 0, 1 (refused or failed) or 2 (usage error).
    public static func main(_ arguments: [String]? = nil) async {
        let arguments = normalize(arguments ?? Array(CommandLine.arguments.dropFirst()))
        let json = arguments.contains("--json")
        do {
            var command = try parseAsRoot(arguments)
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            let exitCode = Self.exitCode(for: error)
            if exitCode == .success {
                Self.exit(withError: error)  // --help and the like
            }
            let isUsage = !(error is LoyaltyError) && exitCode == .validationFailure
            let code = (error as? LoyaltyError)?.code.rawValue ?? (isUsage ? "usage" : "failed")
            let message = (error as? LoyaltyError)?.message ?? Self.fullMessage(for: error)
            if json {
                let document = ["error": ["code": code, "message": message]]
                let data = (try? JSONSerialization.data(withJSONObject: document, options: [.sortedKeys])) ?? Data()
                FileHandle.standardOutput.write(data + Data("\n".utf8))
            }
            FileHandle.standardError.write(Data("loyalty: \(message)\n".utf8))
            Foundation.exit(isUsage ? 2 : 1)
        }
    }
}

extension LoyaltyCLI {
    /// Moves the global options written before the command (`loyalty --device DIR --json balance`) after it,
    /// where each command's option group reads them (`loyalty balance --device DIR --json`).
    static func normalize(_ arguments: [String]) -> [String] {
        var leading: [String] = []
        var index = 0
        while index < arguments.count {
            let token = arguments[index]
            if token == "--json" {
                leading.append(token)
            } else if token == "--device", index + 1 < arguments.count {
                leading += [token, arguments[index + 1]]
                index += 1
            } else if token.hasPrefix("--device=") {
                leading.append(token)
            } else {
                break
            }
            index += 1
        }
        var result = Array(arguments[index...]) + leading
        // A negative skew (`clock skew -2h`) would read as the short options -2 and -h: pass it after `--`.
        if let skew = result.firstIndex(of: "skew"), skew > 0, result[skew - 1] == "clock", skew + 1 < result.count,
            result[skew + 1].hasPrefix("-"), TimeSpan(parsing: result[skew + 1]) != nil
        {
            let value = result.remove(at: skew + 1)
            result += ["--", value]
        }
        return result
    }
}

/// Options every command takes.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: "The device directory (default: $LOYALTY_DEVICE, else ~/.loyalty/device).")
    var device: String?

    @Flag(name: .long, help: "Print exactly one JSON document on stdout.")
    var json = false

    var deviceDirectory: URL {
        if let device { return URL(fileURLWithPath: device) }
        if let environment = ProcessInfo.processInfo.environment["LOYALTY_DEVICE"], !environment.isEmpty {
            return URL(fileURLWithPath: environment)
        }
        return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".loyalty/device")
    }

    var output: Output { Output(json: json) }

    func context() throws -> DeviceContext { try DeviceContext(directory: deviceDirectory) }
}
