internal import LoyaltyCore
internal import LoyaltyServer
internal import LoyaltyStore
internal import LoyaltySync

/// A device: its file, and (unless crashed) its store and engine in memory.
final class SimDevice: @unchecked Sendable {
    let name: String
    let member: Int
    let path: String
    let network: SimNetwork
    var store: DeviceStore?
    var engine: SyncEngine?
    var skew: TimeSpan = .zero
    var partitionedUntil: Timestamp?
    /// Sequence numbers the store acknowledged.
    var recorded: [UInt64] = []
    /// Redemptions made as guaranteed: their allowance's hold, and when the device last learned its allowance.
    var guaranteed: [UInt64: (hold: Timestamp, knownAt: Timestamp)] = [:]
    /// When the device last completed a sync.
    var lastSyncedAt: Timestamp?

    init(name: String, member: Int, path: String, network: SimNetwork) {
        self.name = name
        self.member = member
        self.path = path
        self.network = network
    }

    func open(clock: TestClock) throws {
        let store = try DeviceStore(path: path, now: clock.now())
        let skew: @Sendable () -> TimeSpan = { [unowned self] in self.skew }
        self.store = store
        self.engine = SyncEngine(
            store: store, transport: network, policy: SyncPolicy(pageSize: 100, prefetch: false, retries: 0),
            wallClock: { clock.now().adding(skew()) }, jitter: { 1 }, sleep: { _ in })
    }

    /// A crash: the memory is gone; the file is what the next start finds.
    func close() {
        store = nil
        engine = nil
    }
}
