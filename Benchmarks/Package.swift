// swift-tools-version:6.1
import PackageDescription

/// Micro-benchmarks of meshsim's policy modules: nanoseconds and heap allocations per call.
/// Kept in a nested package so that the root package never links the malloc counter.
let package = Package(
    name: "meshsim-benchmarks",
    dependencies: [
        .package(name: "meshsim", path: ".."),
        .package(url: "https://github.com/apple/swift-nio", from: "2.81.0"),
    ],
    targets: [
        // Counts calls to malloc and its siblings by defining them in the executable, forwarding to glibc.
        .target(name: "CMallocCounter"),
        .executableTarget(
            name: "PolicyBenchmarks",
            dependencies: [
                "CMallocCounter",
                .product(name: "SimCore", package: "meshsim"),
                .product(name: "Balancers", package: "meshsim"),
                .product(name: "Limiters", package: "meshsim"),
                .product(name: "Breakers", package: "meshsim"),
                .product(name: "Retries", package: "meshsim"),
                .product(name: "SimKernel", package: "meshsim"),
                .product(name: "LiveHTTP", package: "meshsim"),
                .product(name: "MeshModel", package: "meshsim"),
                .product(name: "Scenario", package: "meshsim"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
