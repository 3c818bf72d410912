import SharedModel
import SimCore
import SimRandom
import Spec
import Testing

@Suite("The arrival generator shared by simulated clients and load")
struct ArrivalGeneratorTests {
    func generator(_ schedule: ArrivalSchedule, end: Int64, seed: UInt64 = 7) -> ArrivalGenerator {
        let keys = ArrivalGenerator.streamKeys(client: "c")
        return ArrivalGenerator(
            schedule: schedule,
            end: end,
            arrivals: RandomStream(seed: seed, replication: 0, key: keys.arrivals),
            thinning: RandomStream(seed: seed, replication: 0, key: keys.thinning)
        )
    }

    func times(_ g: inout ArrivalGenerator) -> [Int64] {
        var result: [Int64] = []
        while let next = g.next() {
            #expect(next > (result.last ?? 0))
            result.append(next)
        }
        return result
    }

    let ramped = ArrivalSchedule(
        process: .constant,
        points: [
            RatePoint(at: .zero, rate: 100, ramp: true),
            RatePoint(at: .seconds(10), rate: 300),
            RatePoint(at: .seconds(20), rate: 50),
        ],
        spikes: [LoadSpike(start: 22_000_000_000, end: 24_000_000_000, factor: 4)]
    )

    @Test("steps, ramps and spikes integrate exactly")
    func integral() {
        // 0–10 s ramps 100 → 300: 2,000 arrivals; 10–20 s at 300: 3,000; 20–22 s at 50: 100; 22–24 s at 200: 400.
        #expect(abs(ramped.expectedArrivals(from: 0, to: 10_000_000_000) - 2000) < 1e-6)
        #expect(abs(ramped.expectedArrivals(from: 0, to: 20_000_000_000) - 5000) < 1e-6)
        #expect(abs(ramped.expectedArrivals(from: 0, to: 24_000_000_000) - 5500) < 1e-6)
        #expect(abs(ramped.expectedArrivals(from: 5_000_000_000, to: 15_000_000_000) - 2750) < 1e-6)
        #expect(ramped.rate(at: 23_000_000_000) == 200)
        #expect(ramped.rate(at: 5_000_000_000) == 200)
        #expect(ramped.peakRate == 1200)
    }

    @Test("constant spacing: the first arrival half a gap in, then one every 1 / rate")
    func constant() {
        var g = generator(ArrivalSchedule(process: .constant, rate: 1000), end: 10_000_000)
        let t = times(&g)
        #expect(t == [500_000] + (1...9).map { Int64($0) * 1_000_000 + 500_000 })
    }

    @Test("constant spacing follows a step up at once, not one old gap later")
    func stepUp() {
        let schedule = ArrivalSchedule(
            process: .constant,
            points: [RatePoint(at: .zero, rate: 10), RatePoint(at: .seconds(1), rate: 1000)]
        )
        var g = generator(schedule, end: 1_010_000_000)
        let t = times(&g)
        // 10 arrivals in the first second (at 0.05, 0.15, … 0.95 s), then every 1 ms from 1.0005 s.
        #expect(t.prefix(10) == ArraySlice((0..<10).map { Int64($0) * 100_000_000 + 50_000_000 }))
        #expect(t[10] == 1_000_500_000 && t[11] == 1_001_500_000)
        #expect(t.count == 20)
    }

    @Test("constant spacing follows steps, ramps and spikes: counts per piece within one arrival")
    func constantPieces() {
        var g = generator(ramped, end: 26_000_000_000)
        let t = times(&g)
        func count(_ a: Int64, _ b: Int64) -> Int { t.filter { $0 >= a && $0 < b }.count }
        #expect(abs(count(0, 10_000_000_000) - 2000) <= 2)
        #expect(abs(count(10_000_000_000, 20_000_000_000) - 3000) <= 1)
        #expect(abs(count(22_000_000_000, 24_000_000_000) - 400) <= 1)
        #expect(abs(count(24_000_000_000, 26_000_000_000) - 100) <= 1)
    }

    @Test("a zero-rate stretch has no arrivals and the next rate resumes them")
    func zeroStretch() {
        let schedule = ArrivalSchedule(
            process: .constant,
            points: [
                RatePoint(at: .zero, rate: 10), RatePoint(at: .seconds(1), rate: 0),
                RatePoint(at: .seconds(2), rate: 10),
            ]
        )
        var g = generator(schedule, end: 3_000_000_000)
        let t = times(&g)
        #expect(t.filter { $0 >= 1_000_000_000 && $0 < 2_000_000_000 }.isEmpty)
        #expect(t.count == 20)
        #expect(t[10] == 2_050_000_000)
    }

    @Test("Poisson with a spike: thinning keeps each piece's count within 4 standard deviations")
    func poissonThinning() {
        var schedule = ramped
        schedule.process = .poisson
        var g = generator(schedule, end: 26_000_000_000)
        let t = times(&g)
        for (a, b) in [
            (Int64(0), Int64(10_000_000_000)), (10_000_000_000, 20_000_000_000), (22_000_000_000, 24_000_000_000),
        ] {
            let expected = schedule.expectedArrivals(from: a, to: b)
            let n = Double(t.filter { $0 >= a && $0 < b }.count)
            #expect(abs(n - expected) < 4 * expected.squareRoot(), "[\(a), \(b)): \(n) against \(expected)")
        }
    }

    @Test("steady Poisson: exponential gaps with the right mean, the same for the same seed, not for another")
    func steadyPoisson() {
        var a = generator(ArrivalSchedule(process: .poisson, rate: 1000), end: 100_000_000_000)
        var b = generator(ArrivalSchedule(process: .poisson, rate: 1000), end: 100_000_000_000)
        var c = generator(ArrivalSchedule(process: .poisson, rate: 1000), end: 100_000_000_000, seed: 8)
        let ta = times(&a)
        #expect(ta == times(&b))
        #expect(ta != times(&c))
        #expect(abs(Double(ta.count) - 100_000) < 4 * 100_000.0.squareRoot())
    }

    @Test("a scenario's client schedule carries the load spikes aimed at it, and only those")
    func fromSpec() throws {
        var spec = MeshSpec(name: "s", duration: .seconds(10))
        spec.services = [ServiceSpec(name: "a", replicas: [ReplicaSpec()], serviceTime: .constant(1))]
        spec.clients = [
            ClientSpec(
                name: "c0",
                target: 0,
                load: .open(arrival: .poisson, schedule: [RatePoint(at: .zero, rate: 5)])
            ),
            ClientSpec(name: "c1", target: 0, load: .closed(users: 1, thinkTime: .constant(0))),
        ]
        spec.faults = [
            FaultSpec(at: .seconds(1), duration: .seconds(2), kind: .loadSpike(client: 0, factor: 3)),
            FaultSpec(at: .seconds(1), duration: nil, kind: .loadSpike(client: 1, factor: 9)),
        ]
        let schedule = try #require(ArrivalSchedule(client: 0, of: spec))
        #expect(schedule.spikes == [LoadSpike(start: 1_000_000_000, end: 3_000_000_000, factor: 3)])
        #expect(schedule.rate(at: 2_000_000_000) == 15)
        #expect(!schedule.isSteadyPoisson)
        #expect(ArrivalSchedule(client: 1, of: spec) == nil)
    }
}
