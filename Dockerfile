# syntax=docker/dockerfile:1.7
# Images for both binaries, multi-arch (amd64 and arm64/Graviton), small and non-root:
#
#   docker buildx build --platform linux/amd64,linux/arm64 --target node     -t ghcr.io/shoal-dev/shoal-node:0.1.0 .
#   docker buildx build --platform linux/amd64,linux/arm64 --target operator -t ghcr.io/shoal-dev/shoal-operator:0.1.0 .
#
# The build stage runs on the builder's own architecture and cross-compiles (no QEMU emulation);
# the runtime stage is distroless (glibc, no shell), user 65532.

ARG RUST_VERSION=1.89

FROM --platform=$BUILDPLATFORM rust:${RUST_VERSION}-bookworm AS build
ARG TARGETARCH
WORKDIR /src
RUN set -eux; \
    case "$TARGETARCH" in \
      amd64) triple=x86_64-unknown-linux-gnu;  pkgs="gcc-x86-64-linux-gnu libc6-dev-amd64-cross" ;; \
      arm64) triple=aarch64-unknown-linux-gnu; pkgs="gcc-aarch64-linux-gnu libc6-dev-arm64-cross" ;; \
      *) echo "unsupported TARGETARCH $TARGETARCH" >&2; exit 1 ;; \
    esac; \
    apt-get update; apt-get install -y --no-install-recommends $pkgs; rm -rf /var/lib/apt/lists/*; \
    rustup target add "$triple"; echo "$triple" > /triple
# C code in dependencies (mimalloc, ring) and the final link use the target's cross toolchain.
ENV CC_x86_64_unknown_linux_gnu=x86_64-linux-gnu-gcc \
    CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc \
    CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER=x86_64-linux-gnu-gcc \
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target,sharing=locked \
    set -eux; triple=$(cat /triple); \
    cargo build --locked --release --target "$triple" -p shoal-node -p shoal-operator \
      --bin shoal-node --bin shoal-operator; \
    mkdir -p /out; cp "target/$triple/release/shoal-node" "target/$triple/release/shoal-operator" /out/

FROM gcr.io/distroless/cc-debian12:nonroot AS node
COPY --from=build /out/shoal-node /usr/local/bin/shoal-node
USER 65532:65532
EXPOSE 6379
ENTRYPOINT ["/usr/local/bin/shoal-node"]

FROM gcr.io/distroless/cc-debian12:nonroot AS operator
COPY --from=build /out/shoal-operator /usr/local/bin/shoal-operator
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/shoal-operator"]
CMD ["run"]
