internal import ArgumentParser
internal import Foundation
internal import LoyaltyCore
internal import LoyaltyStore
internal import LoyaltySync

// Signing in

struct Enroll: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Join the programme: creates the member, their card and this device, then syncs.",
        discussion: """
            The password is asked for on a terminal, or read from standard input with --password-stdin; \
            --password works too, but other users of the machine can see arguments in the process list.

            Example: printf '%s\\n' 'correct horse' | loyalty enroll --server http://127.0.0.1:8080 \
            --name 'Anna Schmidt' --email anna@example.de --password-stdin
            """
    )
    @OptionGroup var global: GlobalOptions
    @Option(help: "The server's URL (https://, or http:// to this machine; --insecure allows http:// elsewhere).")
    var server: String
    @Flag(help: "Allow a plain http:// server that is not on this machine (passwords and tokens travel unencrypted).")
    var insecure = false
    @Option(help: "Full name.") var name: String
    @Option(help: "E-mail address (used to sign in).") var email: String
    @OptionGroup var secret: PasswordOptions
    @Option(help: "Phone number in international form, e.g. '+49 30 1234567'.") var phone: String?
    @Option(help: "Birth date, YYYY-MM-DD.") var birthdate: String?
    @Option(help: "A name for this device.") var deviceName: String?

    func run() async throws {
        let context = try global.context()
        let url = try serverURL(server, insecure: insecure)
        let password = try secret.resolve()
        let registration = Registration(name: name, email: email, phone: phone, birthdate: birthdate)
        let report: SyncReport
        do {
            report = try await context.engine(serverURL: url).enroll(
                registration, password: password, deviceName: deviceName ?? "terminal", serverURL: url.absoluteString,
                progress: global.output.syncProgress)
            global.output.endProgress()
        } catch {
            throw LoyaltyError("enroll_failed", "enrolment failed: \(error)")
        }
        try signedIn(context, report: report, verb: "Enrolled")
    }

    func signedIn(_ context: DeviceContext, report: SyncReport, verb: String) throws {
        guard let identity = try context.store.identity() else { throw LoyaltyError("failed", "no session was stored") }
        global.output.emit(
            [
                "member": identity.memberID.rawValue, "device": identity.deviceID.rawValue, "card": identity.cardNumber,
                "pulled": report.pulled,
            ],
            text:
                "\(verb): member \(identity.memberID), device \(identity.deviceID), card \(identity.cardNumber) (\(report.pulled) changes pulled)"
        )
    }
}

struct Login: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Sign this device in to an existing member, then sync.")
    @OptionGroup var global: GlobalOptions
    @Option(help: "The server's URL (https://, or http:// to this machine; --insecure allows http:// elsewhere).")
    var server: String
    @Flag(help: "Allow a plain http:// server that is not on this machine (passwords and tokens travel unencrypted).")
    var insecure = false
    @Option(help: "E-mail address.") var email: String
    @OptionGroup var secret: PasswordOptions
    @Option(help: "A name for this device.") var deviceName: String?

    func run() async throws {
        let context = try global.context()
        let url = try serverURL(server, insecure: insecure)
        let password = try secret.resolve()
        let report: SyncReport
        do {
            report = try await context.engine(serverURL: url).login(
                email: email, password: password, deviceName: deviceName ?? "terminal", serverURL: url.absoluteString,
                progress: global.output.syncProgress)
            global.output.endProgress()
        } catch {
            throw LoyaltyError("login_failed", "sign-in failed: \(error)")
        }
        guard let identity = try context.store.identity() else { throw LoyaltyError("failed", "no session was stored") }
        global.output.emit(
            [
                "member": identity.memberID.rawValue, "device": identity.deviceID.rawValue, "card": identity.cardNumber,
                "pulled": report.pulled,
            ],
            text:
                "Signed in: member \(identity.memberID), device \(identity.deviceID) (\(report.pulled) changes pulled)")
    }
}

struct Logout: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Sign out: revoke this device on the server and wipe its member data (unsent changes are lost).",
        discussion: """
            Online, the server revokes the device first, so that a copy of its refresh token is worth nothing. \
            Offline (or when the server cannot be reached) the data is wiped all the same and the output says that \
            the server was not told: revoke the device from another one with 'loyalty device revoke ID'.
            """)
    @OptionGroup var global: GlobalOptions
    func run() async throws {
        let context = try global.context()
        let pending = try context.store.status().pending
        var revoked = false
        var reason = "this device is not signed in"
        // A device whose tokens are gone is wiped all the same.
        if let identity = (try? context.store.identity()) ?? nil {
            do {
                try await context.engine().revoke(identity.deviceID)
                revoked = true
            } catch {
                reason = "\(error)"
            }
        }
        try context.store.wipe()
        let server =
            revoked
            ? "the server revoked this device"
            : "the server was not told (\(reason)): revoke this device from another one with 'loyalty device revoke'"
        global.output.emit(
            ["signedOut": true, "discarded": pending, "revokedOnServer": revoked],
            text: "Signed out; \(pending) unsent changes were discarded; \(server).")
    }
}

struct PasswordCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "password", abstract: "Change the member's password (every other device is signed out).",
        discussion: """
            Asks for the current and the new password on a terminal, or reads them from the first two lines of \
            standard input with --password-stdin. Needs the network.
            """)
    @OptionGroup var global: GlobalOptions
    @Flag(help: "Read the current password, then the new one, from the first two lines of standard input.")
    var passwordStdin = false

    func run() async throws {
        let context = try global.context()
        let (current, new): (String, String)
        if passwordStdin {
            guard let first = readLine(strippingNewline: true), let second = readLine(strippingNewline: true) else {
                throw LoyaltyError(
                    "no_password", "--password-stdin needs two lines: the current password, then the new one")
            }
            (current, new) = (first, second)
        } else {
            guard isatty(STDIN_FILENO) == 1, let first = getpass("Current password: ").map({ String(cString: $0) }),
                let second = getpass("New password: ").map({ String(cString: $0) })
            else {
                throw LoyaltyError("no_password", "give the passwords on a terminal prompt, or with --password-stdin")
            }
            (current, new) = (first, second)
        }
        do {
            try await context.engine().changePassword(current: current, new: new)
        } catch {
            throw LoyaltyError("password_change_failed", "the password was not changed: \(error)")
        }
        global.output.emit(
            ["changed": true], text: "Password changed; every other device of the member was signed out.")
    }
}

struct SignOutEverywhere: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sign-out-everywhere",
        abstract: "Revoke every device of the member, this one included, and wipe this one (needs the network).")
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let context = try global.context()
        do {
            try await context.engine().signOutEverywhere()
        } catch {
            throw LoyaltyError("failed", "the devices were not signed out: \(error)")
        }
        let pending = try context.store.status().pending
        try context.store.wipe()
        global.output.emit(
            ["signedOut": true, "discarded": pending],
            text: "Every device of the member is signed out; this one was wiped (\(pending) unsent changes discarded).")
    }
}

/// A server's URL: https anywhere, plain http only to this machine unless `insecure`.
func serverURL(_ text: String, insecure: Bool = false) throws -> URL {
    guard let url = URL(string: text), let scheme = url.scheme, ["http", "https"].contains(scheme),
        let host = url.host
    else {
        throw ValidationError("Please give --server as a URL such as https://loyalty.example or http://127.0.0.1:8080.")
    }
    let loopback = host == "localhost" || host.hasPrefix("127.") || host == "::1" || host == "[::1]"
    if scheme == "http", !loopback, !insecure {
        throw ValidationError(
            "Please use https:// for a server that is not on this machine (passwords and tokens would travel "
                + "unencrypted), or add --insecure if you mean it.")
    }
    return url
}

/// How a command gets the member's password: never needed as an argument.
struct PasswordOptions: ParsableArguments {
    @Option(
        help: "The password, at least 8 characters (visible in the process list: prefer a prompt or --password-stdin).")
    var password: String?
    @Flag(help: "Read the password from the first line of standard input.")
    var passwordStdin = false

    func validate() throws {
        if password != nil && passwordStdin {
            throw ValidationError("Please give the password one way: --password or --password-stdin.")
        }
    }

    /// The password: the option, standard input, or a prompt on the terminal (not echoed).
    func resolve() throws -> String {
        if let password { return password }
        if passwordStdin {
            guard let line = readLine(strippingNewline: true), !line.isEmpty else {
                throw LoyaltyError("no_password", "--password-stdin read no password from standard input")
            }
            return line
        }
        guard isatty(STDIN_FILENO) == 1, let typed = getpass("Password: ") else {
            throw LoyaltyError(
                "no_password", "give the password on a terminal prompt, or with --password-stdin (or --password)")
        }
        return String(cString: typed)
    }
}
