import Breakers
import SimCore
import Testing

@Suite("Hystrix circuit breaker")
struct HystrixCircuitBreakerTests {
    /// Runs `count` permitted requests with `outcome` at `now`.
    static func requests(
        _ breaker: inout HystrixCircuitBreakerStateMachine,
        _ outcome: HystrixOutcome,
        times count: Int,
        at now: SimInstant
    ) {
        for _ in 0..<count {
            #expect(breaker.acquire(at: now) == .permitted)
            _ = breaker.record(outcome, at: now)
        }
    }

    @Test("defaults are Hystrix's")
    func defaults() throws {
        let c = try HystrixCircuitBreakerConfiguration()
        #expect(c.requestVolumeThreshold == 20)
        #expect(c.errorThresholdPercentage == 50)
        #expect(c.sleepWindow == .seconds(5))
        #expect(c.rollingStatisticalWindow == .seconds(10))
        #expect(c.rollingStatisticalWindowBuckets == 10)
        #expect(c.bucketLength == .seconds(1))
        #expect(c.healthSnapshotInterval == .milliseconds(500))
        #expect(c.executionTimeout == .seconds(1))
    }

    @Test("no trip below 20 requests, even at 100% errors")
    func volumeThreshold() throws {
        var breaker = HystrixCircuitBreakerStateMachine(configuration: try HystrixCircuitBreakerConfiguration())
        Self.requests(&breaker, .failure, times: 19, at: tms(100))
        #expect(breaker.acquire(at: t(1)) == .permitted)
        #expect(breaker.healthSnapshot == HystrixHealthCounts(totalRequests: 19, errorCount: 19))
        #expect(breaker.state == .closed)
    }

    @Test("trips at ≥ 50% errors over ≥ 20 requests, at the first snapshot that sees them")
    func trip() throws {
        var breaker = HystrixCircuitBreakerStateMachine(configuration: try HystrixCircuitBreakerConfiguration())
        Self.requests(&breaker, .success, times: 10, at: tms(600))  // the snapshot at 600 ms saw nothing yet
        Self.requests(&breaker, .timeout, times: 5, at: tms(700))
        Self.requests(&breaker, .rejected, times: 5, at: tms(800))
        // The snapshot taken at 600 ms is still current until 1,100 ms: no trip yet.
        #expect(breaker.acquire(at: tms(1_099)) == .permitted)
        #expect(breaker.state == .closed)
        #expect(breaker.acquire(at: tms(1_100)) == .rejected)
        #expect(breaker.state == .open)
        #expect(breaker.healthSnapshot.errorPercentage == 50)
        #expect(breaker.openedInstant == tms(1_100))
    }

    @Test("49% errors do not trip (the percentage is truncated)")
    func belowThreshold() throws {
        var breaker = HystrixCircuitBreakerStateMachine(configuration: try HystrixCircuitBreakerConfiguration())
        Self.requests(&breaker, .failure, times: 99, at: tms(600))
        Self.requests(&breaker, .success, times: 101, at: tms(600))
        #expect(breaker.acquire(at: t(2)) == .permitted)
        #expect(breaker.healthSnapshot.errorPercentage == 49)
        #expect(breaker.state == .closed)
    }

    @Test("after the 5 s sleep window exactly one trial passes; success closes and resets the window")
    func singleTrialSuccess() throws {
        var breaker = HystrixCircuitBreakerStateMachine(configuration: try HystrixCircuitBreakerConfiguration())
        Self.requests(&breaker, .failure, times: 20, at: tms(600))
        #expect(breaker.acquire(at: t(2)) == .rejected)
        #expect(breaker.acquire(at: t(7)) == .rejected)  // not strictly after 2 s + 5 s
        #expect(breaker.acquire(at: justAfter(t(7))) == .permitted)
        #expect(breaker.state == .halfOpen)
        #expect(breaker.acquire(at: t(8)) == .rejected)
        #expect(breaker.acquire(at: t(20)) == .rejected)
        #expect(breaker.record(.success, at: t(20)) == BreakerTransition(from: .halfOpen, to: .closed))
        #expect(breaker.rollingHealthCounts(at: t(20)) == HystrixHealthCounts(totalRequests: 0, errorCount: 0))
        #expect(breaker.acquire(at: t(21)) == .permitted)
        #expect(breaker.shortCircuitedCount == 4)
    }

    @Test("a failed trial reopens with a new openedAt")
    func singleTrialFailure() throws {
        var breaker = HystrixCircuitBreakerStateMachine(configuration: try HystrixCircuitBreakerConfiguration())
        Self.requests(&breaker, .failure, times: 20, at: tms(600))
        #expect(breaker.acquire(at: t(2)) == .rejected)
        #expect(breaker.acquire(at: t(8)) == .permitted)
        #expect(breaker.record(.timeout, at: t(9)) == BreakerTransition(from: .halfOpen, to: .open))
        #expect(breaker.openedInstant == t(9))
        #expect(breaker.acquire(at: t(14)) == .rejected)
        #expect(breaker.acquire(at: justAfter(t(14))) == .permitted)
    }

    @Test("errors older than the 10 s rolling window no longer count")
    func rollingWindow() throws {
        var breaker = HystrixCircuitBreakerStateMachine(configuration: try HystrixCircuitBreakerConfiguration())
        Self.requests(&breaker, .failure, times: 15, at: tms(100))
        Self.requests(&breaker, .success, times: 10, at: tms(5_100))
        #expect(breaker.rollingHealthCounts(at: tms(9_900)).totalRequests == 25)
        // At 10.1 s the bucket [0.1 s, 1.1 s) has rolled out.
        #expect(breaker.rollingHealthCounts(at: tms(10_100)) == HystrixHealthCounts(totalRequests: 10, errorCount: 0))
        Self.requests(&breaker, .failure, times: 9, at: tms(10_100))
        #expect(breaker.acquire(at: t(11)) == .permitted)  // 9 / 19: below the volume
        #expect(breaker.healthSnapshot.totalRequests == 19)
        // After a gap longer than the window everything is gone.
        #expect(breaker.rollingHealthCounts(at: t(40)).totalRequests == 0)
    }

    @Test("a call longer than the execution timeout is recorded as a timeout (an error)")
    func executionTimeout() throws {
        var breaker = HystrixCircuitBreakerStateMachine(configuration: try HystrixCircuitBreakerConfiguration())
        for _ in 0..<20 {
            _ = breaker.acquire(at: tms(600))
            _ = breaker.record(success: true, duration: .milliseconds(1_500), at: tms(600))
        }
        #expect(breaker.rollingHealthCounts(at: tms(600)) == HystrixHealthCounts(totalRequests: 20, errorCount: 20))
        #expect(breaker.acquire(at: t(2)) == .rejected)
    }
}
