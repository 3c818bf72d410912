import SimCore
import SimKernel
import Testing

@Suite("EventQueue")
struct EventQueueTests {
    @Test("events run in time order, simultaneous ones first-in first-out")
    func ordering() {
        var queue = EventQueue<String>()
        queue.schedule("c@5", at: SimInstant(nanoseconds: 5))
        queue.schedule("a@1", at: SimInstant(nanoseconds: 1))
        queue.schedule("d@5", at: SimInstant(nanoseconds: 5))
        queue.schedule("b@3", at: SimInstant(nanoseconds: 3))
        queue.schedule("e@5", at: SimInstant(nanoseconds: 5))
        var order: [String] = []
        var times: [Int64] = []
        queue.run { q, event in
            order.append(event)
            times.append(q.now.nanoseconds)
        }
        #expect(order == ["a@1", "b@3", "c@5", "d@5", "e@5"])
        #expect(times == [1, 3, 5, 5, 5])
        #expect(queue.eventsProcessed == 5)
    }

    @Test("FIFO ties hold for thousands of simultaneous events scheduled from handlers")
    func manyTies() {
        var queue = EventQueue<Int>()
        for i in 0..<1_000 { queue.schedule(i, at: SimInstant(nanoseconds: 10)) }
        var seen: [Int] = []
        queue.run { q, value in
            seen.append(value)
            if value < 1_000 { q.schedule(value + 1_000, after: .zero) }
        }
        #expect(seen == Array(0..<2_000))
    }

    @Test("lanes of constant delays pop in exactly the order of a plain heap, with cancellation and growth")
    func lanesMatchTheHeap() {
        // The same random schedule twice: once every event at its time in the heap, once the constant-delay ones
        // in their lanes. Handlers schedule more as they run, as the simulator's do.
        func play(lanes useLanes: Bool) -> [(Int64, Int)] {
            var queue = EventQueue<Int>()
            let delays: [Int64] = [0, 7, 100, 3_000]
            let lanes = delays.map { queue.lane(forDelay: .nanoseconds($0)) }
            var state: UInt64 = 99
            func next() -> UInt64 {
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                return state >> 33
            }
            var tokens: [EventQueue<Int>.Token] = []
            for i in 0..<50 { tokens.append(queue.schedule(i, at: SimInstant(nanoseconds: Int64(next() % 500)))) }
            var order: [(Int64, Int)] = []
            var label = 50
            queue.run { q, event in
                order.append((q.now.nanoseconds, event))
                guard label < 20_000 else { return }
                for _ in 0..<Int(next() % 3) {
                    let k = Int(next() % UInt64(delays.count))
                    let token: EventQueue<Int>.Token
                    if useLanes {
                        token = q.schedule(label, inLane: lanes[k])
                    } else {
                        token = q.schedule(label, after: .nanoseconds(delays[k]))
                    }
                    if next() % 10 == 0 { q.cancel(token) }
                    label += 1
                }
                if next() % 4 == 0 { q.schedule(label, after: .nanoseconds(Int64(next() % 200))); label += 1 }
            }
            _ = tokens
            return order
        }
        let heap = play(lanes: false)
        let lanes = play(lanes: true)
        #expect(heap.count > 1_000)
        #expect(heap.map(\.0) == lanes.map(\.0))
        #expect(heap.map(\.1) == lanes.map(\.1))
        #expect(zip(heap, heap.dropFirst()).allSatisfy { $0.0 <= $1.0 })
    }

    @Test("a lane's pending events count, and its delay is found again by value")
    func laneCounting() {
        var queue = EventQueue<Int>()
        let lane = queue.lane(forDelay: .nanoseconds(10))
        #expect(queue.lane(forDelay: .nanoseconds(10)) == lane)
        #expect(queue.lane(forDelay: .nanoseconds(11)) != lane)
        for i in 0..<5 { queue.schedule(i, inLane: lane) }
        #expect(queue.count == 5)
        #expect(queue.nextTime == SimInstant(nanoseconds: 10))
        var seen: [Int] = []
        queue.run { _, event in seen.append(event) }
        #expect(seen == [0, 1, 2, 3, 4])
        #expect(queue.count == 0)
    }

    @Test("cancelled events never run; cancelling twice or after running is harmless")
    func cancellation() {
        var queue = EventQueue<Int>()
        let t1 = queue.schedule(1, at: SimInstant(nanoseconds: 1))
        let t2 = queue.schedule(2, at: SimInstant(nanoseconds: 2))
        queue.schedule(3, at: SimInstant(nanoseconds: 3))
        queue.cancel(t2)
        queue.cancel(t2)
        var seen: [Int] = []
        queue.run { _, v in seen.append(v) }
        queue.cancel(t1)
        #expect(seen == [1, 3])
    }

    @Test("run(until:) stops before later events and advances the clock to the limit")
    func runUntil() {
        var queue = EventQueue<Int>()
        for t: Int64 in [1, 5, 10, 20] { queue.schedule(Int(t), at: SimInstant(nanoseconds: t)) }
        var seen: [Int] = []
        let handled = queue.run(until: SimInstant(nanoseconds: 10)) { _, v in seen.append(v) }
        #expect(handled == 3)
        #expect(seen == [1, 5, 10])
        #expect(queue.now == SimInstant(nanoseconds: 10))
        #expect(queue.nextTime == SimInstant(nanoseconds: 20))
        #expect(queue.count == 1)
    }

    @Test("a random schedule pops in sorted (time, insertion) order", arguments: 0..<20)
    func heapProperty(seed: UInt64) {
        var rng = SplitMix(state: seed)
        var queue = EventQueue<(Int64, Int)>()
        var expected: [(Int64, Int)] = []
        for i in 0..<500 {
            let t = Int64(uniformBelow(50, using: &rng))
            queue.schedule((t, i), at: SimInstant(nanoseconds: t))
            expected.append((t, i))
        }
        expected.sort { $0.0 < $1.0 || ($0.0 == $1.0 && $0.1 < $1.1) }
        var seen: [(Int64, Int)] = []
        queue.run { _, e in seen.append(e) }
        #expect(seen.map(\.1) == expected.map(\.1))
    }
}
