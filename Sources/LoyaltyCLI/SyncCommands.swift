internal import ArgumentParser
internal import Foundation
internal import LoyaltyCore
internal import LoyaltyStore
internal import LoyaltySync

// Sync and status

struct Sync: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send queued changes and bring back what the server decided.")
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let context = try global.context()
        let output = global.output
        let report = try await context.engine().sync(progress: output.syncProgress)
        output.endProgress()
        switch report.outcome {
        case .synced: break
        case .offline(let message):
            throw LoyaltyError(
                "offline", "offline: \(message); \(try context.store.status().pending) changes stay queued")
        case .signedOut(let message):
            throw LoyaltyError("signed_out", "signed out: \(message); log in again (changes are kept)")
        case .revoked:
            throw LoyaltyError("device_revoked", "this device was signed out by the member; its data was wiped")
        case .upgradeRequired(let message): throw LoyaltyError("upgrade_required", message)
        case .failed(let message): throw LoyaltyError("sync_failed", message)
        }
        var lines = [
            "Synced: \(report.pushed) pushed (\(report.applied) applied, \(report.rejected) rejected), \(report.pulled) pulled."
        ]
        for notice in report.notices { lines.append("  \(output.bold("notice")): \(notice.message)") }
        output.emit(
            [
                "pushed": report.pushed, "applied": report.applied, "rejected": report.rejected,
                "pulled": report.pulled,
                "notices": report.notices.map(noticeJSON),
            ],
            text: lines.joined(separator: "\n"))
    }
}

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Who this device is, and where syncing stands.")
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let context = try global.context()
        let status = try context.store.status()
        let identity = try context.store.identity()
        let lastSync = status.lastSyncAt.map { $0.description } ?? "never"
        var text = [
            "Member:   \(identity?.memberID.rawValue ?? "(not signed in)")",
            "Device:   \(identity?.deviceID.rawValue ?? "-")",
            "Network:  \(context.isOnline ? "on" : "off")",
            "Pending:  \(status.pending)",
            "Synced:   \(lastSync)",
            "Notices:  \(status.unreadNotices) unread",
        ]
        if status.condition != .ready { text.append("State:    \(status.condition.rawValue)") }
        let member = context.store.view?.member
        if try context.store.pendingMutations().contains(where: { $0.envelope.mutation == .requestErasure }) {
            text.append("Account:  erasure requested (done at the next sync)")
        } else if let member, member.status != .active {
            text.append("Account:  \(member.status.rawValue)\(member.statusReason.map { ": \($0)" } ?? "")")
        }
        if let error = status.lastError { text.append("Last error: \(error)") }
        global.output.emit(
            [
                "member": identity?.memberID.rawValue as Any, "device": identity?.deviceID.rawValue as Any,
                "online": context.isOnline, "pending": status.pending,
                "lastSync": status.lastSyncAt?.description as Any,
                "notices": status.unreadNotices, "condition": status.condition.rawValue,
                "lastError": status.lastError as Any, "account": member?.status.rawValue as Any,
                "accountReason": member?.statusReason as Any,
            ],
            text: text.joined(separator: "\n"))
    }
}

/// The member's view, or a clear error before the first sync.
func memberView(_ context: DeviceContext) throws -> MemberState {
    guard try context.store.identity() != nil else {
        throw LoyaltyError(
            "not_signed_in", "this device is not signed in: run 'loyalty enroll' or 'loyalty login' first")
    }
    guard let view = context.store.view else {
        throw LoyaltyError("not_bootstrapped", "this device has no data yet: run 'loyalty sync' while online")
    }
    return view
}

func noticeJSON(_ notice: Notice) -> [String: Any] {
    [
        "id": notice.id, "kind": notice.kind.rawValue, "message": notice.message,
        "mutation": notice.sequence.map { Int($0) } as Any,
    ]
}
