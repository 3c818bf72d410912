import Breakers
import SimCore
import Testing

@Suite("resilience4j CircuitBreaker")
struct Resilience4jCircuitBreakerTests {
    /// Acquires and records `count` calls at `now`; returns the transitions.
    @discardableResult
    static func calls(
        _ breaker: inout Resilience4jCircuitBreakerStateMachine,
        _ outcome: Resilience4jCallOutcome,
        times count: Int,
        duration: SimDuration = .milliseconds(10),
        at now: SimInstant
    ) -> [BreakerTransition] {
        var transitions: [BreakerTransition] = []
        for _ in 0..<count {
            guard breaker.acquire(at: now) == .permitted else { continue }
            if let transition = breaker.record(outcome, duration: duration, at: now) { transitions.append(transition) }
        }
        return transitions
    }

    @Test("defaults are resilience4j's")
    func defaults() throws {
        let c = try Resilience4jCircuitBreakerConfiguration()
        #expect(c.failureRateThreshold == 50)
        #expect(c.slowCallRateThreshold == 100)
        #expect(c.slowCallDurationThreshold == .seconds(60))
        #expect(c.slidingWindowType == .countBased)
        #expect(c.slidingWindowSize == 100)
        #expect(c.minimumNumberOfCalls == 100)
        #expect(c.waitIntervalInOpenState == .fixed(.seconds(60)))
        #expect(c.permittedNumberOfCallsInHalfOpenState == 10)
        #expect(c.maxWaitDurationInHalfOpenState == .zero)
        #expect(c.transitionToStateAfterWaitDuration == .open)
        #expect(!c.automaticTransitionFromOpenToHalfOpenEnabled)
    }

    @Test("CLOSED → OPEN at 50% failures once 100 calls are recorded, not before")
    func closedToOpen() throws {
        let configuration = try Resilience4jCircuitBreakerConfiguration()
        var breaker = Resilience4jCircuitBreakerStateMachine(configuration: configuration)
        // 50 failures then 49 successes: 99 calls, below the minimum of 100.
        #expect(Self.calls(&breaker, .failure, times: 50, at: t(1)).isEmpty)
        #expect(Self.calls(&breaker, .success, times: 49, at: t(1)).isEmpty)
        #expect(breaker.state == .closed)
        #expect(breaker.metrics(at: t(1)).failureRate == nil)
        // The 100th call makes 50 / 100 = 50 % ≥ 50 %.
        let transitions = Self.calls(&breaker, .success, times: 1, at: t(2))
        #expect(transitions == [BreakerTransition(from: .closed, to: .open)])
        #expect(breaker.state == .open)
        #expect(breaker.attempts == 1)
        #expect(breaker.openUntil == t(62))
    }

    @Test("49% failures over the last 100 calls keep it CLOSED; the ring forgets the oldest call")
    func slidingCount() throws {
        let configuration = try Resilience4jCircuitBreakerConfiguration()
        var breaker = Resilience4jCircuitBreakerStateMachine(configuration: configuration)
        Self.calls(&breaker, .failure, times: 49, at: t(1))
        Self.calls(&breaker, .success, times: 51, at: t(1))
        #expect(breaker.state == .closed)
        #expect(breaker.metrics(at: t(1)).failureRate == 49)
        // The next failure evicts a failure (the oldest call): still 49 %.
        Self.calls(&breaker, .failure, times: 1, at: t(2))
        #expect(breaker.state == .closed)
        #expect(breaker.metrics(at: t(2)).failedCalls == 49)
        // The ring is now 48 failures, 51 successes, 1 failure (oldest first): each new failure evicts an old
        // failure until the 49th, which evicts the oldest success and makes 50 %.
        var transitions: [BreakerTransition] = []
        var calls = 0
        while breaker.state == .closed && calls < 100 {
            transitions += Self.calls(&breaker, .failure, times: 1, at: t(3))
            calls += 1
        }
        #expect(transitions == [BreakerTransition(from: .closed, to: .open)])
        #expect(calls == 49)
    }

    @Test("OPEN rejects until strictly after the wait; then the next attempt moves to HALF_OPEN")
    func openToHalfOpen() throws {
        let configuration = try Resilience4jCircuitBreakerConfiguration()
        var breaker = Resilience4jCircuitBreakerStateMachine(configuration: configuration)
        Self.calls(&breaker, .failure, times: 100, at: t(0))
        #expect(breaker.state == .open)
        #expect(breaker.acquire(at: t(30)) == .rejected)
        #expect(breaker.acquire(at: t(60)) == .rejected)
        #expect(breaker.state == .open)
        #expect(breaker.metrics(at: t(60)).notPermittedCalls == 2)
        #expect(breaker.acquire(at: justAfter(t(60))) == .permitted)
        #expect(breaker.state == .halfOpen)
        #expect(breaker.availableHalfOpenPermits == 9)
    }

    @Test("HALF_OPEN admits 10 calls; ≥ 50% failures among them reopens, fewer close")
    func halfOpenOutcomes() throws {
        let configuration = try Resilience4jCircuitBreakerConfiguration()
        for failures in [5, 4] {
            var breaker = Resilience4jCircuitBreakerStateMachine(configuration: configuration)
            Self.calls(&breaker, .failure, times: 100, at: t(0))
            let start = justAfter(t(60))
            for _ in 0..<10 { #expect(breaker.acquire(at: start) == .permitted) }
            #expect(breaker.acquire(at: start) == .rejected)
            var transitions: [BreakerTransition] = []
            for i in 0..<10 {
                let outcome: Resilience4jCallOutcome = i < failures ? .failure : .success
                if let transition = breaker.record(outcome, duration: .milliseconds(5), at: start) {
                    transitions.append(transition)
                }
                if i < 9 { #expect(breaker.state == .halfOpen) }
            }
            if failures == 5 {
                #expect(transitions == [BreakerTransition(from: .halfOpen, to: .open)])
                #expect(breaker.attempts == 2)
                #expect(breaker.openUntil == start + .seconds(60))
            } else {
                #expect(transitions == [BreakerTransition(from: .halfOpen, to: .closed)])
                #expect(breaker.attempts == 0)
                #expect(breaker.metrics(at: start).calls == 0)
            }
        }
    }

    @Test("HALF_OPEN decides after min(minimumNumberOfCalls, permitted) calls")
    func halfOpenEarlyDecision() throws {
        let configuration = try Resilience4jCircuitBreakerConfiguration(
            slidingWindowSize: 10,
            minimumNumberOfCalls: 4,
            waitIntervalInOpenState: .fixed(.seconds(1))
        )
        var breaker = Resilience4jCircuitBreakerStateMachine(configuration: configuration)
        Self.calls(&breaker, .failure, times: 4, at: t(0))
        #expect(breaker.state == .open)
        let transitions = Self.calls(&breaker, .success, times: 4, at: t(2))
        #expect(
            transitions == [
                BreakerTransition(from: .halfOpen, to: .closed)
            ]
        )
    }

    @Test("slow calls: a rate ≥ slowCallRateThreshold of calls slower than the duration threshold opens")
    func slowCalls() throws {
        let configuration = try Resilience4jCircuitBreakerConfiguration(
            slowCallRateThreshold: 50,
            slowCallDurationThreshold: .seconds(2),
            slidingWindowSize: 10,
            minimumNumberOfCalls: 10
        )
        var breaker = Resilience4jCircuitBreakerStateMachine(configuration: configuration)
        Self.calls(&breaker, .success, times: 5, duration: .seconds(2), at: t(1))  // exactly 2 s: not slow
        Self.calls(&breaker, .success, times: 4, duration: .milliseconds(2_001), at: t(1))
        #expect(breaker.state == .closed)
        let transitions = Self.calls(&breaker, .success, times: 1, duration: .seconds(3), at: t(1))
        #expect(transitions == [BreakerTransition(from: .closed, to: .open)])
        #expect(breaker.metrics(at: t(1)).slowCalls == 5)
    }

    @Test("TIME_BASED: calls older than the window drop out of the rates")
    func timeBased() throws {
        let configuration = try Resilience4jCircuitBreakerConfiguration(
            slidingWindowType: .timeBased,
            slidingWindowSize: 10,
            minimumNumberOfCalls: 20
        )
        var breaker = Resilience4jCircuitBreakerStateMachine(configuration: configuration)
        Self.calls(&breaker, .failure, times: 15, at: tms(500))
        #expect(breaker.metrics(at: t(9)).calls == 15)
        // Second 10 is the 11th second: the calls of second 0 are out of the 10-second window.
        #expect(breaker.metrics(at: tms(10_100)).calls == 0)
        Self.calls(&breaker, .success, times: 10, at: tms(10_100))
        #expect(breaker.state == .closed)
        let transitions = Self.calls(&breaker, .failure, times: 10, at: tms(10_200))
        #expect(transitions == [BreakerTransition(from: .closed, to: .open)])
        #expect(breaker.metrics(at: tms(10_200)).calls == 20)
    }

    @Test("automatic transition: OPEN turns HALF_OPEN at the deadline without a call")
    func automaticTransition() throws {
        let configuration = try Resilience4jCircuitBreakerConfiguration(
            slidingWindowSize: 5,
            minimumNumberOfCalls: 5,
            waitIntervalInOpenState: .fixed(.seconds(10)),
            automaticTransitionFromOpenToHalfOpenEnabled: true
        )
        var breaker = Resilience4jCircuitBreakerStateMachine(configuration: configuration)
        Self.calls(&breaker, .failure, times: 5, at: t(0))
        #expect(breaker.nextTimerDeadline == t(10))
        #expect(breaker.poll(at: tms(9_999)) == nil)
        #expect(breaker.poll(at: t(10)) == BreakerTransition(from: .open, to: .halfOpen))
        #expect(breaker.state == .halfOpen)
        #expect(breaker.nextTimerDeadline == nil)
    }

    @Test("maxWaitDurationInHalfOpenState sends a stuck HALF_OPEN back to OPEN")
    func halfOpenMaxWait() throws {
        let configuration = try Resilience4jCircuitBreakerConfiguration(
            slidingWindowSize: 5,
            minimumNumberOfCalls: 5,
            waitIntervalInOpenState: .fixed(.seconds(10)),
            permittedNumberOfCallsInHalfOpenState: 2,
            maxWaitDurationInHalfOpenState: .seconds(30)
        )
        var breaker = Resilience4jCircuitBreakerStateMachine(configuration: configuration)
        Self.calls(&breaker, .failure, times: 5, at: t(0))
        #expect(breaker.acquire(at: t(11)) == .permitted)
        #expect(breaker.acquire(at: t(11)) == .permitted)
        #expect(breaker.acquire(at: t(12)) == .rejected)  // permits leaked: the calls never complete
        #expect(breaker.nextTimerDeadline == t(41))
        #expect(breaker.acquire(at: t(41)) == .rejected)
        #expect(breaker.state == .open)
        #expect(breaker.attempts == 2)
        #expect(breaker.openUntil == t(51))
    }

    @Test("released and ignored calls give their HALF_OPEN permit back")
    func releasePermit() throws {
        let configuration = try Resilience4jCircuitBreakerConfiguration(
            slidingWindowSize: 5,
            minimumNumberOfCalls: 5,
            waitIntervalInOpenState: .fixed(.seconds(1)),
            permittedNumberOfCallsInHalfOpenState: 1
        )
        var breaker = Resilience4jCircuitBreakerStateMachine(configuration: configuration)
        Self.calls(&breaker, .failure, times: 5, at: t(0))
        #expect(breaker.acquire(at: t(2)) == .permitted)
        #expect(breaker.acquire(at: t(2)) == .rejected)
        breaker.release(at: t(2))
        #expect(breaker.acquire(at: t(2)) == .permitted)
        #expect(breaker.record(.ignored, duration: .zero, at: t(2)) == nil)
        #expect(breaker.acquire(at: t(2)) == .permitted)
        let closed = breaker.record(success: true, duration: .zero, at: t(3))
        #expect(closed == BreakerTransition(from: .halfOpen, to: .closed))
    }

    @Test("exponential wait: initial × multiplier^(attempts − 1), capped")
    func exponentialWait() throws {
        let wait = Resilience4jCircuitBreakerConfiguration.WaitInterval.exponential(
            initial: .seconds(1),
            multiplier: 2,
            maximum: .seconds(5)
        )
        #expect((1...5).map { wait.duration(attempts: $0) } == [1, 2, 4, 5, 5].map { SimDuration.seconds($0) })
        let configuration = try Resilience4jCircuitBreakerConfiguration(
            slidingWindowSize: 2,
            minimumNumberOfCalls: 2,
            waitIntervalInOpenState: wait,
            permittedNumberOfCallsInHalfOpenState: 1
        )
        var breaker = Resilience4jCircuitBreakerStateMachine(configuration: configuration)
        Self.calls(&breaker, .failure, times: 2, at: t(0))
        #expect(breaker.openUntil == t(1))
        Self.calls(&breaker, .failure, times: 1, at: t(2))
        #expect(breaker.openUntil == t(4))
        Self.calls(&breaker, .failure, times: 1, at: t(5))
        #expect(breaker.openUntil == t(9))
        Self.calls(&breaker, .success, times: 1, at: t(10))
        #expect(breaker.state == .closed)
        #expect(breaker.attempts == 0)
    }

    @Test("DISABLED passes and records nothing, FORCED_OPEN rejects, METRICS_ONLY records but never trips")
    func manualStates() throws {
        let configuration = try Resilience4jCircuitBreakerConfiguration(slidingWindowSize: 10, minimumNumberOfCalls: 10)
        var breaker = Resilience4jCircuitBreakerStateMachine(configuration: configuration)
        #expect(breaker.transition(to: .disabled, at: t(0)) == BreakerTransition(from: .closed, to: .disabled))
        Self.calls(&breaker, .failure, times: 50, at: t(1))
        #expect(breaker.state == .disabled)
        #expect(breaker.metrics(at: t(1)).calls == 0)
        _ = breaker.transition(to: .forcedOpen, at: t(2))
        #expect(breaker.acquire(at: t(1_000)) == .rejected)
        _ = breaker.transition(to: .metricsOnly, at: t(3))
        Self.calls(&breaker, .failure, times: 50, at: t(4))
        #expect(breaker.state == .metricsOnly)
        #expect(breaker.metrics(at: t(4)).failureRate == 100)
        #expect(breaker.transition(to: .metricsOnly, at: t(5)) == nil)
        breaker.reset()
        #expect(breaker.state == .closed)
        #expect(breaker.metrics(at: t(5)).notPermittedCalls == 0)
    }

    @Test("outcomes of calls admitted before the breaker opened are recorded without a transition")
    func recordWhileOpen() throws {
        let configuration = try Resilience4jCircuitBreakerConfiguration(slidingWindowSize: 4, minimumNumberOfCalls: 4)
        var breaker = Resilience4jCircuitBreakerStateMachine(configuration: configuration)
        for _ in 0..<6 { #expect(breaker.acquire(at: t(0)) == .permitted) }
        for _ in 0..<4 { _ = breaker.record(.failure, duration: .zero, at: t(1)) }
        #expect(breaker.state == .open)
        #expect(breaker.record(.success, duration: .zero, at: t(2)) == nil)
        #expect(breaker.record(.success, duration: .zero, at: t(2)) == nil)
        #expect(breaker.state == .open)
        #expect(breaker.metrics(at: t(2)).failedCalls == 2)
    }
}
