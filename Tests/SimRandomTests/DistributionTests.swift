import Foundation
import SimCore
import SimRandom
import Testing

@Suite("Distributions: parsing")
struct DistributionParsingTests {
    @Test("compact forms build the expected distribution")
    func compact() throws {
        #expect(try Distribution.parse("constant:10ms") == .constant(10_000_000))
        #expect(try Distribution.parse("10ms") == .constant(10_000_000))
        #expect(try Distribution.parse("exponential:mean=1ms") == .exponential(mean: 1_000_000))
        #expect(try Distribution.parse("uniform:min=1ms,max=3ms") == .uniform(min: 1_000_000, max: 3_000_000))
        #expect(try Distribution.parse("normal:mean=10ms,stddev=2ms") == .normal(mean: 10_000_000, stddev: 2_000_000))
        #expect(try Distribution.parse("gamma:shape=2,mean=10ms") == .gamma(shape: 2, scale: 5_000_000))
        #expect(try Distribution.parse("weibull:shape=1.5,scale=10ms") == .weibull(shape: 1.5, scale: 10_000_000))
        #expect(try Distribution.parse("pareto:shape=2.5,scale=1ms") == .pareto(shape: 2.5, scale: 1_000_000))
        #expect(try Distribution.parse("empirical:1ms,2ms,5ms") == .samples([1_000_000, 2_000_000, 5_000_000]))
    }

    @Test("lognormal by median and p99 has that median and p99")
    func lognormalByQuantiles() throws {
        guard case .lognormal(let mu, let sigma) = try Distribution.parse("lognormal:median=20ms,p99=120ms") else {
            Issue.record("not a lognormal")
            return
        }
        #expect(abs(exp(mu) - 20e6) < 1)
        #expect(abs(exp(mu + 2.3263478740408408 * sigma) - 120e6) < 10)
    }

    @Test("a percentile table anchors p0 and extrapolates p100 from the last segment")
    func percentileTable() throws {
        let d = try Distribution.parse("empirical:p50=5ms,p90=20ms,p99=80ms")
        guard case .percentiles(let points) = d else {
            Issue.record("not a percentile table")
            return
        }
        #expect(points.first!.percentile == 0 && points.first!.value == 0)
        #expect(points.last!.percentile == 100)
        #expect(abs(points.last!.value - (80e6 + 60e6 / 9)) < 1)
    }

    @Test("a mixture's weights must sum to 1")
    func mixture() throws {
        let d = try Distribution.parse("mixture:0.99*lognormal:median=20ms,p99=120ms|0.01*constant:500ms")
        guard case .mixture(let weights, let parts) = d else {
            Issue.record("not a mixture")
            return
        }
        #expect(weights == [0.99, 0.01])
        #expect(parts[1] == .constant(500_000_000))
        #expect(throws: DistributionError.self) { try Distribution.parse("mixture:0.5*1ms|0.4*2ms") }
    }

    @Test(
        "bad descriptions are errors with a useful message, never traps",
        arguments: [
            ("lognorml:median=1ms,p99=2ms", "did you mean 'lognormal'"), ("exponential:mean=5", "no unit"),
            ("exponential:mean=-1ms", "negative"), ("exponential:mena=1ms", "needs 'mean'"),
            ("uniform:min=3ms,max=1ms", "max ≥ min"), ("lognormal:median=10ms,p99=1ms", "p99 ≥ median"),
            ("gamma:shape=0,mean=1ms", "shape must be > 0"), ("empirical:p50=5ms,p40=9ms", "must not decrease"),
            ("empirical:p100=5ms", "strictly between"), ("constant:1ms,2ms", "exactly one"),
            ("exponential:mean=1ms,extra=2", "no parameter 'extra'"), ("lognormal", "needs parameters"),
            ("", "not a distribution"), ("mixture:1ms", "needs a weight"), ("weibull:shape=abc,scale=1ms", "number"),
        ]
    )
    func errors(text: String, fragment: String) {
        do {
            _ = try Distribution.parse(text)
            Issue.record("'\(text)' was accepted")
        } catch {
            #expect(error.description.contains(fragment), "\(error.description)")
        }
    }
}

@Suite("Distributions: sampling with GSL")
struct DistributionSamplingTests {
    static func draws(_ d: Distribution, _ n: Int = 200_000, seed: UInt64 = 7) -> [Double] {
        let stream = RandomStream(seed: seed)
        return (0..<n).map { _ in Double(d.sample(using: stream)) }
    }

    static func quantile(_ sorted: [Double], _ q: Double) -> Double { sorted[Int(Double(sorted.count - 1) * q)] }

    @Test(
        "sample means match the analytic means within 1.5%",
        arguments: [
            "exponential:mean=1ms", "uniform:min=1ms,max=3ms", "normal:mean=10ms,stddev=2ms",
            "normal:mean=1ms,stddev=2ms", "lognormal:median=20ms,p99=120ms", "gamma:shape=2,scale=5ms",
            "weibull:shape=1.5,scale=10ms", "pareto:shape=3.5,scale=1ms", "empirical:1ms,2ms,6ms",
            "empirical:p50=5ms,p90=20ms,p99=80ms", "mixture:0.99*lognormal:median=2ms,p99=8ms|0.01*constant:500ms",
            "lognormal:mu=-6.9,sigma=0.5",
        ]
    )
    func means(text: String) throws {
        let d = try Distribution.parse(text)
        let samples = Self.draws(d)
        let mean = samples.reduce(0, +) / Double(samples.count)
        let expected = try #require(d.mean)
        #expect(abs(mean - expected) / expected < 0.015, "\(text): sample mean \(mean), analytic \(expected)")
        #expect(samples.allSatisfy { $0 >= 0 })
    }

    @Test("lognormal by median and p99 reproduces both quantiles")
    func lognormalQuantiles() throws {
        let sorted = Self.draws(try Distribution.parse("lognormal:median=20ms,p99=120ms"), 400_000).sorted()
        #expect(abs(Self.quantile(sorted, 0.5) / 20e6 - 1) < 0.01)
        #expect(abs(Self.quantile(sorted, 0.99) / 120e6 - 1) < 0.03)
    }

    @Test("a percentile table reproduces its percentiles")
    func percentileTableQuantiles() throws {
        let sorted = Self.draws(try Distribution.parse("empirical:p50=5ms,p90=20ms,p99=80ms")).sorted()
        #expect(abs(Self.quantile(sorted, 0.5) / 5e6 - 1) < 0.02)
        #expect(abs(Self.quantile(sorted, 0.9) / 20e6 - 1) < 0.02)
        #expect(abs(Self.quantile(sorted, 0.99) / 80e6 - 1) < 0.03)
    }

    @Test("a truncated normal never goes below zero")
    func truncation() throws {
        #expect(Self.draws(try Distribution.parse("normal:mean=0ms,stddev=5ms"), 50_000).allSatisfy { $0 >= 0 })
    }

    @Test("a mixture draws each component with its weight")
    func mixtureWeights() throws {
        let samples = Self.draws(try Distribution.parse("mixture:0.9*constant:1ms|0.1*constant:500ms"))
        let slow = Double(samples.filter { $0 == 500e6 }.count) / Double(samples.count)
        #expect(abs(slow - 0.1) < 0.005)
    }
}

@Suite("RandomStream")
struct RandomStreamTests {
    @Test("the same seed gives the same sequence; different keys give different ones")
    func determinism() {
        let a = RandomStream(seed: 1, replication: 0, key: "x")
        let b = RandomStream(seed: 1, replication: 0, key: "x")
        let c = RandomStream(seed: 1, replication: 0, key: "y")
        let sa = (0..<100).map { _ in a.next() }
        #expect(sa == (0..<100).map { _ in b.next() })
        #expect(sa != (0..<100).map { _ in c.next() })
    }

    @Test("the stream is GSL's MT19937: seed 4357 (MT19937's reference seed) starts with 4293858116")
    func gslReference() {
        let stream = RandomStream(seed: 4357)
        #expect(stream.next32() == 4_293_858_116)
    }

    @Test("uniform draws lie in [0, 1) with mean 1/2")
    func uniform() {
        let stream = RandomStream(seed: 3)
        var sum = 0.0
        for _ in 0..<100_000 {
            let u = stream.uniform()
            #expect(u >= 0 && u < 1)
            sum += u
        }
        #expect(abs(sum / 100_000 - 0.5) < 0.005)
    }
}
