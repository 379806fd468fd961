import LoyaltyCore
import Testing

@Suite struct HybridLogicalClockTests {
    @Test func stampsKeepIncreasingWhenTheWallClockStandsStillOrGoesBack() {
        var clock = HybridLogicalClock()
        let wall = Timestamp.test()
        var previous = clock.now(wall: wall)
        for offset in [0, 0, -5000, -86_400_000, 3, 1] as [Int64] {
            let stamp = clock.now(wall: wall.adding(.milliseconds(offset)))
            #expect(stamp > previous, "offset \(offset)")
            previous = stamp
        }
        #expect(
            previous.wallMilliseconds == wall.millisecondsSince1970 + 3
                || previous.wallMilliseconds == wall.millisecondsSince1970)
    }

    @Test func aReceivedStampOrdersEveryLaterLocalStampAfterIt() throws {
        var behind = HybridLogicalClock()
        let server = HLCTimestamp(wallMilliseconds: Timestamp.test(.hours(30)).millisecondsSince1970, counter: 9)
        // This device's clock is more than a day behind: after seeing the server's stamp it still stamps after it.
        let received = try behind.receive(server, wall: .test())
        #expect(received > server)
        #expect(behind.now(wall: .test(.seconds(1))) > server)
    }

    @Test func aStampTooFarAheadIsRefusedAndLeavesTheClockAlone() {
        var clock = HybridLogicalClock(maximumDrift: .days(3))
        let before = clock.now(wall: .test())
        let wild = HLCTimestamp(wallMilliseconds: Timestamp.test(.days(4)).millisecondsSince1970, counter: 0)
        #expect(throws: LoyaltyError.self) { try clock.receive(wild, wall: .test()) }
        #expect(clock.last == before)
    }

    @Test func anAbsurdWallClockIsClampedNotFatal() {
        var clock = HybridLogicalClock()
        let first = clock.now(wall: Timestamp(millisecondsSince1970: .max / 2))
        let second = clock.now(wall: Timestamp(millisecondsSince1970: .max / 2))
        #expect(second > first)
        #expect(first.wallMilliseconds < (1 << 48))
        #expect(clock.now(wall: Timestamp(millisecondsSince1970: -5)) > second, "still monotonic")
    }

    @Test func theCounterOverflowsIntoTheNextMillisecond() {
        let wall = Timestamp.test()
        var clock = HybridLogicalClock(last: HLCTimestamp(wallMilliseconds: wall.millisecondsSince1970, counter: .max))
        let stamp = clock.now(wall: wall)
        #expect(stamp == HLCTimestamp(wallMilliseconds: wall.millisecondsSince1970 + 1, counter: 0))
    }

    @Test(arguments: 0..<20)
    func theSixtyFourBitFormRoundTripsAndKeepsTheOrder(seed: Int) {
        var random = SeededRandom(seed: UInt64(seed))
        let a = HLCTimestamp(
            wallMilliseconds: random.int64(0...((1 << 48) - 1)),
            counter: UInt16(random.int(0...Int(UInt16.max))))
        let b = HLCTimestamp(
            wallMilliseconds: random.int64(0...((1 << 48) - 1)),
            counter: UInt16(random.int(0...Int(UInt16.max))))
        #expect(HLCTimestamp(encoded: a.encoded) == a)
        #expect((a < b) == (a.encoded < b.encoded))
    }

    @Test func theClockOffsetIsMeasuredFromTheRoundTripMidpoint() {
        // Device clock a day behind; request took 200 ms; server answered at its true time.
        let sent = Timestamp.test(.days(-1))
        let received = sent.adding(.milliseconds(200))
        let offset = ClockOffset(sent: sent, received: received, serverTime: Timestamp.test(.milliseconds(100)))
        #expect(offset.offset == .days(1))
        #expect(offset.uncertainty == .milliseconds(100))
        #expect(offset.corrected(sent) == .test())
    }
}
