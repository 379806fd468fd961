/// A seeded random sequence (SplitMix64) with its own mapping onto ranges: the same seed gives the same values on
/// every machine and every toolchain.
///
/// The standard library's `random(in:using:)` does not promise how it maps a generator's output onto a range, so
/// a seed could replay differently after a toolchain upgrade; these few lines do, and a test pins them. The
/// simulator, the property tests and the benchmarks all draw from this one type.
public struct SeededRandom: Sendable {
    private var state: UInt64

    /// A sequence that starts from `seed`.
    public init(seed: UInt64) { state = seed }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A number below `bound` (which must be positive), without modulo bias: draws that fall into the short last
    /// stretch of 2^64 are drawn again.
    public mutating func below(_ bound: UInt64) -> UInt64 {
        precondition(bound > 0, "a bound must be positive")
        let threshold = (0 &- bound) % bound  // 2^64 mod bound
        while true {
            let draw = next()
            if draw >= threshold { return draw % bound }
        }
    }

    /// A number in `range`.
    public mutating func int(_ range: ClosedRange<Int>) -> Int {
        let span = UInt64(bitPattern: Int64(range.upperBound) &- Int64(range.lowerBound)) &+ 1
        let offset = span == 0 ? next() : below(span)  // span 0: the whole of Int
        return Int(truncatingIfNeeded: Int64(range.lowerBound) &+ Int64(bitPattern: offset))
    }

    /// A number in `range` (which must not be empty).
    public mutating func int(_ range: Range<Int>) -> Int {
        precondition(!range.isEmpty, "a range to draw from must not be empty")
        return int(range.lowerBound...(range.upperBound - 1))
    }

    /// A number in `range`.
    public mutating func int64(_ range: ClosedRange<Int64>) -> Int64 {
        Int64(int(Int(range.lowerBound)...Int(range.upperBound)))
    }

    /// True or false, evenly.
    public mutating func bool() -> Bool { next() >> 63 == 1 }

    /// True with probability `probability`.
    public mutating func chance(_ probability: Double) -> Bool { unit() < probability }

    /// A number in [0, 1) with 53 random bits.
    public mutating func unit() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    /// One of `items` (which must not be empty).
    public mutating func pick<Element>(_ items: [Element]) -> Element { items[int(0..<items.count)] }
}
