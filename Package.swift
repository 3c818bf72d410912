// swift-tools-version:6.1
import PackageDescription

/// The live half's per-request code (parsers, generator, backends) runs on one event-loop thread per object, so
/// the dynamic exclusivity checks on its class properties guard nothing; release builds leave them out there
/// (debug builds and the test suite's debug runs keep them).
let hotPathSettings: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]

/// meshsim: compare load-balancing, rate-limiting, circuit-breaking and retry strategies for a service mesh,
/// by discrete-event simulation and on real sockets.
let package = Package(
    name: "meshsim",
    products: [
        .executable(name: "meshsim", targets: ["meshsim"]),
        .library(name: "SimCore", targets: ["SimCore"]),
        .library(name: "SimKernel", targets: ["SimKernel"]),
        .library(name: "SimRandom", targets: ["SimRandom"]),
        .library(name: "Balancers", targets: ["Balancers"]),
        .library(name: "Health", targets: ["Health"]),
        .library(name: "Breakers", targets: ["Breakers"]),
        .library(name: "Limiters", targets: ["Limiters"]),
        .library(name: "Retries", targets: ["Retries"]),
        .library(name: "Spec", targets: ["Spec"]),
        .library(name: "SharedModel", targets: ["SharedModel"]),
        .library(name: "MeshModel", targets: ["MeshModel"]),
        .library(name: "Scenario", targets: ["Scenario"]),
        .library(name: "Reports", targets: ["Reports"]),
        .library(name: "Runner", targets: ["Runner"]),
        .library(name: "LiveHTTP", targets: ["LiveHTTP"]),
        .library(name: "Live", targets: ["Live"]),
        .library(name: "Proxy", targets: ["Proxy"]),
        .library(name: "MeshTLS", targets: ["MeshTLS"]),
        .library(name: "Regress", targets: ["Regress"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.1.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", .upToNextMinor(from: "0.2.0")),
        .package(url: "https://github.com/apple/swift-numerics", from: "1.0.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.81.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.0"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.0"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.1.0"),
    ],
    targets: [
        // The GNU Scientific Library, found with pkg-config (Debian: libgsl-dev).
        .systemLibrary(
            name: "CGSL",
            pkgConfig: "gsl",
            providers: [.apt(["libgsl-dev"])]
        ),
        // Core value types shared by every layer: time, stream keys, endpoint views, elementary math.
        // Its only dependency is swift-numerics' RealModule (pure Swift), so policy modules need no Foundation.
        .target(name: "SimCore", dependencies: [.product(name: "RealModule", package: "swift-numerics")]),
        // The discrete-event kernel: an event queue in integer nanoseconds.
        .target(name: "SimKernel", dependencies: ["SimCore"]),
        // Seeded GSL random streams and service-time distributions.
        .target(name: "SimRandom", dependencies: ["SimCore", "CGSL"]),
        // Policy modules: clock-agnostic state machines that import only SimCore.
        .target(name: "Balancers", dependencies: ["SimCore"]),
        .target(name: "Health", dependencies: ["SimCore"]),
        .target(name: "Breakers", dependencies: ["SimCore"]),
        .target(name: "Limiters", dependencies: ["SimCore"]),
        .target(name: "Retries", dependencies: ["SimCore"]),
        // The validated mesh as plain values (services, replicas, call policies, clients, faults), shared by the
        // scenario loader, the simulator and the live half; and the policy boxes built from it.
        .target(
            name: "Spec",
            dependencies: ["SimCore", "SimRandom", "Balancers", "Retries", "Health", "Breakers", "Limiters"]
        ),
        // What a replica, an arrival schedule, a fault and a call edge's policies do, free of any clock: driven by the
        // simulator in virtual nanoseconds and by the live half on event loops.
        .target(
            name: "SharedModel",
            dependencies: [
                "SimCore", "SimRandom", "Spec", "Balancers", "Breakers", "Health", "Limiters", "Retries",
                .product(name: "DequeModule", package: "swift-collections"),
            ]
        ),
        // Streaming metrics (HDR histograms), CSV writers and statistics.
        .target(
            name: "Reports",
            dependencies: [
                "SimCore", "CGSL",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),
        // The mesh model: services, replicas, network, clients and faults driven by the kernel.
        .target(
            name: "MeshModel",
            dependencies: [
                "SimCore", "SimKernel", "SimRandom", "Spec", "SharedModel", "Balancers", "Retries", "Health", "Breakers", "Limiters",
                "Reports",
                .product(name: "DequeModule", package: "swift-collections"),
            ]
        ),
        // Scenario files: YAML loading, variants and validation with file/line/key-path errors.
        .target(
            name: "Scenario",
            dependencies: [
                "SimCore", "SimRandom", "Spec", "Balancers", "Retries", "Health", "Breakers", "Limiters",
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        // The CI gate: compares two results folders metric by metric, with tolerances and significance tests.
        .target(name: "Regress", dependencies: ["Reports", .product(name: "Yams", package: "Yams")]),
        // Runs variants × seeds in parallel and writes the reports.
        .target(name: "Runner", dependencies: ["SimCore", "MeshModel", "Scenario", "Reports"]),
        // Lean HTTP/1.1 request and response parsers working directly on NIO's ByteBuffer.
        .target(
            name: "LiveHTTP",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: hotPathSettings
        ),
        // The real-socket half: emulated backends, the open-loop load generator, nginx/HAProxy harness.
        .target(
            name: "Live",
            dependencies: [
                "LiveHTTP", "SimCore", "SimRandom", "Spec", "SharedModel", "Limiters", "Scenario", "Reports", "Proxy",
                "MeshTLS",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "DequeModule", package: "swift-collections"),
            ],
            swiftSettings: hotPathSettings
        ),
        // The mesh's own security: a certificate authority and SPIFFE identities made at start, mutual TLS
        // contexts for proxies and backends, and the peer identity of a connection.
        .target(
            name: "MeshTLS",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ]
        ),
        // The reverse proxy: HTTP/1.1 on SwiftNIO, routing and balancing with the policy modules, on the event
        // loops' clock.
        .target(
            name: "Proxy",
            dependencies: [
                "LiveHTTP", "SimCore", "SimRandom", "Spec", "SharedModel", "Balancers", "Breakers", "Health", "Retries",
                "Limiters", "MeshTLS",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: hotPathSettings
        ),
        .executableTarget(
            name: "meshsim",
            dependencies: [
                "Runner", "Scenario", "SimCore", "SimRandom", "Spec", "SharedModel", "MeshModel", "Live", "Proxy",
                "MeshTLS", "Regress",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "SimCoreTests", dependencies: ["SimCore", "SimKernel"]),
        .testTarget(name: "SimRandomTests", dependencies: ["SimCore", "SimRandom"]),
        .testTarget(name: "BalancersTests", dependencies: ["SimCore", "Balancers"]),
        .testTarget(name: "HealthTests", dependencies: ["SimCore", "Health"]),
        .testTarget(name: "BreakersTests", dependencies: ["SimCore", "Breakers"]),
        .testTarget(name: "LimitersTests", dependencies: ["SimCore", "Limiters"]),
        .testTarget(name: "RetriesTests", dependencies: ["SimCore", "Retries"]),
        .testTarget(name: "ReportsTests", dependencies: ["SimCore", "Reports"]),
        .testTarget(
            name: "SharedModelTests",
            dependencies: ["SharedModel", "SimCore", "SimRandom", "Spec", "Limiters"]
        ),
        .testTarget(
            name: "ScenarioTests",
            dependencies: [
                "SimCore", "SimRandom", "Spec", "SharedModel", "MeshModel", "Scenario", "Runner", "Reports", "Retries",
                "Breakers",
            ]
        ),
        .testTarget(name: "RegressTests", dependencies: ["Regress", "Reports"]),
        .testTarget(name: "CLITests", dependencies: ["Runner", .product(name: "Yams", package: "Yams")]),
        .testTarget(
            name: "LiveHTTPTests",
            dependencies: ["LiveHTTP", .product(name: "NIOCore", package: "swift-nio")]
        ),
        .testTarget(
            name: "LiveTests",
            dependencies: [
                "Live", "LiveHTTP", "SimCore", "Reports", "Retries", "Spec", "SharedModel", "MeshModel", "Scenario", "SimRandom",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "MeshTLSTests",
            dependencies: [
                "MeshTLS",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        .testTarget(
            name: "ProxyTests",
            dependencies: [
                "Proxy", "Live", "LiveHTTP", "SimCore", "SimRandom", "Spec", "SharedModel", "Reports", "Balancers", "Breakers", "Health", "Retries",
                "Limiters", "MeshTLS",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)

for target in package.targets where target.type != .system {
    var settings = target.swiftSettings ?? []
    // SE-0335: make existential types visible as `any`.
    settings.append(.enableUpcomingFeature("ExistentialAny"))
    // SE-0444: a file sees only the modules it imports itself.
    settings.append(.enableUpcomingFeature("MemberImportVisibility"))
    target.swiftSettings = settings
}
