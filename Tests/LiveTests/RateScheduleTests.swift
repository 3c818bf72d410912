import Live
import SimCore
import Spec
import Testing

@Suite("Rate schedules for live load")
struct RateScheduleTests {
    @Test("a constant rate places arrival k at k / rate")
    func constant() {
        let schedule = RateSchedule(constant: 1000)
        var hint = 0
        #expect(schedule.inverse(0, hint: &hint) == 0)
        #expect(schedule.inverse(1, hint: &hint) == 1_000_000)
        #expect(schedule.inverse(2500, hint: &hint) == 2_500_000_000)
    }

    @Test("steps, ramps and spikes integrate and invert consistently")
    func pieces() {
        let points = [
            RatePoint(at: .zero, rate: 100, ramp: true),
            RatePoint(at: SimDuration(nanoseconds: 10_000_000_000), rate: 300),
            RatePoint(at: SimDuration(nanoseconds: 20_000_000_000), rate: 50),
        ]
        let schedule = RateSchedule(points: points, spikes: [(start: 22_000_000_000, end: 24_000_000_000, factor: 4)])
        // 0–10 s ramps 100 → 300: 2,000 arrivals; 10–20 s at 300: 3,000; 20–22 s at 50: 100; 22–24 s at 200: 400.
        #expect(abs(schedule.cumulative(at: 10_000_000_000) - 2000) < 1e-6)
        #expect(abs(schedule.cumulative(at: 20_000_000_000) - 5000) < 1e-6)
        #expect(abs(schedule.cumulative(at: 24_000_000_000) - 5500) < 1e-6)
        #expect(schedule.rate(at: 23_000_000_000) == 200)
        var hint = 0
        for lambda in stride(from: 0.0, to: 5600, by: 7.3) {
            let t = schedule.inverse(lambda, hint: &hint)!
            #expect(abs(schedule.cumulative(at: t) - lambda) < 1e-3)
        }
    }

    @Test("a rate that drops to zero has no further arrivals")
    func zero() {
        let schedule = RateSchedule(points: [
            RatePoint(at: .zero, rate: 10), RatePoint(at: SimDuration(nanoseconds: 1_000_000_000), rate: 0),
        ])
        var hint = 0
        #expect(schedule.inverse(5, hint: &hint) == 500_000_000)
        #expect(schedule.inverse(11, hint: &hint) == nil)
    }

    @Test("URLs parse or fail with a message")
    func urls() throws {
        let parsed = try LoadConfiguration.parseURL("http://127.0.0.1:8080/a?b=1")
        #expect(parsed.host == "127.0.0.1" && parsed.port == 8080 && parsed.path == "/a?b=1")
        #expect(try LoadConfiguration.parseURL("http://localhost").port == 80)
        for bad in ["https://x", "http://:80/", "http://h:0/", "http://h:99999", "ftp://h"] {
            #expect(throws: LiveError.self) { _ = try LoadConfiguration.parseURL(bad) }
        }
    }
}
