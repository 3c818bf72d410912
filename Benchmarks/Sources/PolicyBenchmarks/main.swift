// Nanoseconds and heap allocations per call of meshsim's hot paths: the kernel's event queue, each balancer's pick,
// each limiter's acquire, the breaker and retry calls, the HTTP parsers. Options in Harness.swift.

import Balancers
import Breakers
import Limiters
import SimCore

calibrate()
print("")
/// Benchmarks `balancer.pick` over `n` endpoints whose active counts drift as picks come and go.
func benchmarkPick(_ name: String, endpoints n: Int, weighted: Bool = false, _ balancer: inout some LoadBalancer) {
    var rng = SplitMix(state: 42)
    var endpoints: [EndpointState] = []
    for i in 0..<n {
        endpoints.append(EndpointState(index: Int32(i), weight: weighted ? Int32(i % 3 + 1) : 1, active: Int32(i % 5)))
    }
    var step = 0
    endpoints.withUnsafeMutableBufferPointer { buffer in
        let view = UnsafeBufferPointer<EndpointState>(buffer)
        measure("\(name), \(n) endpoints\(weighted ? ", weights 1-3" : "")", iterations: Options.iterations) {
            let p = balancer.pick(from: view, at: SimInstant(nanoseconds: Int64(step) * 1_000), using: &rng)!
            // Simulate load moving: the picked endpoint gains a request, a rotating one loses one.
            buffer[p].active &+= 1
            let j = step % n
            if buffer[j].active > 0 { buffer[j].active -= 1 }
            balancer.requestStarted(endpoint: buffer[p].index, at: SimInstant(nanoseconds: Int64(step) * 1_000))
            balancer.requestFinished(
                endpoint: buffer[j].index,
                latency: .milliseconds(Int64(j % 7 + 1)),
                at: SimInstant(nanoseconds: Int64(step) * 1_000)
            )
            step &+= 1
            return p
        }
    }
}

print("Balancer.pick (with requestStarted/requestFinished feedback)")
for n in [10, 1_000] {
    var rr = RoundRobinBalancer()
    benchmarkPick("RoundRobin", endpoints: n, &rr)
    var wrr = WeightedRoundRobinBalancer()
    benchmarkPick("WeightedRoundRobin (EDF)", endpoints: n, weighted: true, &wrr)
    var random = RandomBalancer()
    benchmarkPick("Random", endpoints: n, &random)
    var p2c = try! LeastRequestBalancer()
    benchmarkPick("LeastRequest (P2C, replacement)", endpoints: n, &p2c)
    var scan = try! LeastRequestBalancer(selection: .fullScan)
    benchmarkPick("LeastRequest (full scan)", endpoints: n, &scan)
    var weighted = try! LeastRequestBalancer()
    benchmarkPick("LeastRequest (EDF, active_request_bias 1)", endpoints: n, weighted: true, &weighted)
    var ewma = try! PeakEWMABalancer(endpointCapacity: n)
    benchmarkPick("PeakEWMA (P2C)", endpoints: n, &ewma)
    var ring = try! RingHashBalancer()
    benchmarkPick("RingHash", endpoints: n, weighted: true, &ring)
    var maglev = try! MaglevBalancer()
    benchmarkPick("Maglev", endpoints: n, weighted: true, &maglev)
    var nginxLeast = NginxLeastConnBalancer()
    benchmarkPick("nginx least_conn", endpoints: n, weighted: true, &nginxLeast)
    var nginxTwo = NginxRandomTwoLeastConnBalancer()
    benchmarkPick("nginx random two least_conn", endpoints: n, weighted: true, &nginxTwo)
    var haLeast = HAProxyLeastConnBalancer()
    benchmarkPick("HAProxy leastconn", endpoints: n, weighted: true, &haLeast)
    var haRandom = try! HAProxyRandomBalancer()
    benchmarkPick("HAProxy random(2)", endpoints: n, weighted: true, &haRandom)
}
print("")
print("Limiters: tryAcquire / acquire+release, one call per simulated 100 µs")

/// Benchmarks a rate limiter's `tryAcquire` as time advances.
func benchmarkRate(_ name: String, _ limiter: inout some RateLimiter) {
    var step: Int64 = 0
    measure(name, iterations: Options.iterations) {
        step &+= 1
        return limiter.tryAcquire(permits: 1, at: SimInstant(nanoseconds: step * 100_000)) == .admit ? 1 : 0
    }
}

var bucket = try! TokenBucket(
    .init(maxTokens: 100, tokensPerFill: 1, fillInterval: .milliseconds(1), refill: .continuous)
)
benchmarkRate("TokenBucket (continuous)", &bucket)
var timerBucket = try! TokenBucket(
    .init(maxTokens: 100, tokensPerFill: 10, fillInterval: .milliseconds(10), refill: .timer)
)
benchmarkRate("TokenBucket (timer refill)", &timerBucket)
var gcra = try! GCRALimiter(.init(maxBurst: 100, count: 1_000, period: .seconds(1)))
benchmarkRate("GCRA", &gcra)
var fixed = try! FixedWindowLimiter(.init(limit: 1_000, window: .seconds(1)))
benchmarkRate("FixedWindow", &fixed)
var log = try! SlidingWindowLogLimiter(.init(limit: 1_000, window: .seconds(1)))
benchmarkRate("SlidingWindowLog (limit 1000)", &log)
var counter = try! SlidingWindowCounterLimiter(.init(limit: 1_000, window: .seconds(1)))
benchmarkRate("SlidingWindowCounter", &counter)

/// Benchmarks a concurrency limiter: acquire, then release with a latency sample.
func benchmarkConcurrency<L: ConcurrencyLimit>(_ name: String, _ limiter: inout ConcurrencyLimiter<L>) {
    var rng = SplitMix(state: 7)
    var step: Int64 = 0
    measure(name, iterations: Options.iterations) {
        step &+= 1
        let now = SimInstant(nanoseconds: step * 100_000)
        guard let permit = limiter.acquire(at: now) else { return 0 }
        limiter.release(
            permit,
            at: now + .milliseconds(Int64(step % 9 + 1)),
            outcome: step % 50 == 0 ? .dropped : .success,
            using: &rng
        )
        return 1
    }
}

var aimd = ConcurrencyLimiter(try! AIMDLimit(.init()))
benchmarkConcurrency("AIMD acquire+release", &aimd)
var vegas = ConcurrencyLimiter(try! VegasLimit(.init()))
benchmarkConcurrency("Vegas acquire+release", &vegas)
var gradient = ConcurrencyLimiter(try! Gradient2Limit(.init()))
benchmarkConcurrency("Gradient2 acquire+release", &gradient)

print("")
print("Circuit breakers: acquire + record")
do {
    var hystrix = HystrixCircuitBreakerStateMachine(configuration: try! HystrixCircuitBreakerConfiguration())
    var step: Int64 = 0
    measure("Hystrix acquire+record", iterations: Options.iterations) {
        step &+= 1
        let now = SimInstant(nanoseconds: step * 100_000)
        guard hystrix.acquire(at: now) == .permitted else { return 0 }
        _ = hystrix.record(success: step % 10 != 0, duration: .milliseconds(5), at: now)
        return 1
    }
    var r4j = Resilience4jCircuitBreakerStateMachine(configuration: try! Resilience4jCircuitBreakerConfiguration())
    measure("resilience4j acquire+record (count-based 100)", iterations: Options.iterations) {
        step &+= 1
        let now = SimInstant(nanoseconds: step * 100_000)
        guard r4j.acquire(at: now) == .permitted else { return 0 }
        _ = r4j.record(success: step % 10 != 0, duration: .milliseconds(5), at: now)
        return 1
    }
}
print("")
benchmarkKernel()
print("")
benchmarkRetries()
print("")
benchmarkHTTP()
print("")
benchmarkModel()
finish()
