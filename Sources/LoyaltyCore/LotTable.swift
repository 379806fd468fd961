/// A ledger's lots by id, stored compactly: the lots side by side in one array, and an index from id to place.
///
/// A dictionary of lots would do, but it keeps many of its slots empty, each as large as a lot, which was most of a
/// large member's memory on a device (docs/benchmarks.md). Here only the index (an id and a 4-byte place) has empty
/// slots, and the array can be sized up front when the number of lots is
/// known (``reserveCapacity(_:)``). Which order the lots come in is not defined: callers sort what they need sorted.
public struct LotTable: Hashable, Sendable {
    private var storage: ContiguousArray<EarnLot> = []
    private var places: [LotID: Int32] = [:]

    /// No lots.
    public init() {}

    /// How many lots there are.
    public var count: Int { storage.count }

    /// Whether there are none.
    public var isEmpty: Bool { storage.isEmpty }

    /// The lot with this id, if any.
    public subscript(id: LotID) -> EarnLot? {
        places[id].map { storage[Int($0)] }
    }

    /// Every lot, in no particular order.
    public var values: ContiguousArray<EarnLot> { storage }

    /// Every lot's id, in no particular order.
    public var keys: Dictionary<LotID, Int32>.Keys { places.keys }

    /// Makes room for `count` lots in all, so that loading a known number of lots grows nothing twice.
    public mutating func reserveCapacity(_ count: Int) {
        storage.reserveCapacity(count)
        places.reserveCapacity(count)
    }

    /// Replaces, adds (`lot`) or removes (nil) the lot with this id, and returns the one it replaced.
    @discardableResult
    mutating func put(_ lot: EarnLot?, for id: LotID) -> EarnLot? {
        assert(lot.map { $0.id == id } ?? true, "a lot is kept under its own id")
        guard let place = places[id].map(Int.init) else {
            if let lot {
                precondition(storage.count < Int32.max, "a ledger holds at most \(Int32.max) lots")
                places[id] = Int32(storage.count)
                storage.append(lot)
            }
            return nil
        }
        let old = storage[place]
        if let lot {
            storage[place] = lot
        } else {
            // The last lot takes the removed one's place, so that the array stays without holes.
            let last = storage.removeLast()
            places[id] = nil
            if place < storage.count {
                storage[place] = last
                places[last.id] = Int32(place)
            }
        }
        return old
    }

    /// Equal when they hold the same lots, whatever order each keeps them in.
    public static func == (lhs: LotTable, rhs: LotTable) -> Bool {
        lhs.count == rhs.count && lhs.storage.allSatisfy { rhs[$0.id] == $0 }
    }

    /// Hashes the lots independently of their order, as a dictionary does.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(storage.reduce(0) { $0 ^ $1.hashValue })
        hasher.combine(count)
    }
}
