internal import ArgumentParser
internal import Foundation
internal import LoyaltyCore
internal import LoyaltyStore
internal import LoyaltySync

// Simulation

struct Network: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Turn the simulated network on or off (off is airplane mode: actions queue, sync fails).")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "on or off") var state: String

    func validate() throws {
        guard ["on", "off"].contains(state) else { throw ValidationError("Please say 'on' or 'off'.") }
    }

    func run() async throws {
        let context = try global.context()
        try context.setOnline(state == "on")
        global.output.emit(["online": state == "on"], text: "Network \(state).")
    }
}

struct ClockCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clock", abstract: "Simulate a wrong device clock.", subcommands: [Skew.self])

    struct Skew: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set how far this device's clock is off, e.g. +1d, -2h, 0s.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "A signed duration: +1d, -2h, 90m, 0s.") var skew: String

        func validate() throws {
            guard let span = TimeSpan(parsing: skew) else {
                throw ValidationError("Please write the skew like +1d, -2h, 90m or 0s.")
            }
            guard span.magnitude <= .days(3650) else {
                throw ValidationError("Please keep the skew within ten years (3650d).")
            }
        }

        func run() async throws {
            let context = try global.context()
            let span = TimeSpan(parsing: skew) ?? .zero
            try context.setSkew(span)
            global.output.emit(["skew": span.description], text: "This device's clock is now off by \(span).")
        }
    }
}
