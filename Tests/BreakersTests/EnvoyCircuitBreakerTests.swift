import Breakers
import SimCore
import Testing

@Suite("Envoy circuit breakers")
struct EnvoyCircuitBreakerTests {
    @Test("defaults: 1024 connections, 1024 pending, 1024 requests, 3 retries, unlimited pools")
    func defaults() throws {
        let thresholds = try EnvoyCircuitBreakerThresholds()
        #expect(thresholds == .envoyDefaults)
        #expect(thresholds.maxConnections == 1024)
        #expect(thresholds.maxPendingRequests == 1024)
        #expect(thresholds.maxRequests == 1024)
        #expect(thresholds.maxRetries == 3)
        #expect(thresholds.maxConnectionPools == nil)
    }

    @Test("max_retries 3: the fourth concurrent retry overflows; a release admits the next")
    func retries() {
        var breakers = EnvoyCircuitBreakerStateMachine()
        for _ in 0..<3 { #expect(breakers.tryAcquire(.retries) == .permitted) }
        #expect(breakers.isOpen(.retries))
        #expect(breakers.remaining(.retries) == 0)
        #expect(breakers.tryAcquire(.retries) == .rejected)
        #expect(breakers.tryAcquire(.retries) == .rejected)
        #expect(breakers.overflows(.retries) == 2)
        breakers.release(.retries)
        #expect(breakers.active(.retries) == 2)
        #expect(breakers.tryAcquire(.retries) == .permitted)
        #expect(breakers.overflows(.retries) == 2)
    }

    @Test("every resource and each priority counts separately")
    func independentCounters() throws {
        let small = try EnvoyCircuitBreakerThresholds(
            maxConnections: 2,
            maxPendingRequests: 1,
            maxRequests: 3,
            maxRetries: 0,
            maxConnectionPools: 1
        )
        var breakers = EnvoyCircuitBreakerStateMachine(defaultPriority: small, highPriority: .envoyDefaults)
        #expect(breakers.tryAcquire(.connections) == .permitted)
        #expect(breakers.tryAcquire(.connections) == .permitted)
        #expect(breakers.tryAcquire(.connections) == .rejected)
        #expect(breakers.tryAcquire(.pendingRequests) == .permitted)
        #expect(breakers.tryAcquire(.pendingRequests) == .rejected)
        for _ in 0..<3 { #expect(breakers.tryAcquire(.requests) == .permitted) }
        #expect(breakers.tryAcquire(.requests) == .rejected)
        #expect(breakers.tryAcquire(.retries) == .rejected)  // max_retries 0 admits no retry
        #expect(breakers.tryAcquire(.connectionPools) == .permitted)
        #expect(breakers.tryAcquire(.connectionPools) == .rejected)
        // HIGH priority has its own (default) limits and counters.
        #expect(breakers.tryAcquire(.connections, priority: .high) == .permitted)
        #expect(breakers.active(.connections, priority: .high) == 1)
        #expect(breakers.overflows(.connections, priority: .high) == 0)
        #expect(breakers.remaining(.connections, priority: .high) == 1023)
        for resource in EnvoyCircuitBreakerResource.allCases { #expect(breakers.overflows(resource) == 1) }
        #expect(breakers.thresholds(for: .default) == small)
    }

    @Test("a release with nothing held is ignored")
    func spuriousRelease() {
        var breakers = EnvoyCircuitBreakerStateMachine()
        breakers.release(.requests)
        #expect(breakers.active(.requests) == 0)
        #expect(breakers.remaining(.requests) == 1024)
    }

    @Test("1024 concurrent requests pass and the 1025th overflows")
    func requestLimit() {
        var breakers = EnvoyCircuitBreakerStateMachine()
        for _ in 0..<1024 { #expect(breakers.tryAcquire(.requests) == .permitted) }
        #expect(breakers.tryAcquire(.requests) == .rejected)
        #expect(breakers.overflows(.requests) == 1)
    }
}
