# A small runtime image of the Strait proxy.
#   docker build -t strait .
#   docker run -p 9092:9092 -p 19000-19099:19000-19099 strait \
#     run --upstream kafka:9092 --listen 0.0.0.0:9092 --advertised-host HOST --broker-ports 19000-19099 --admin 0.0.0.0:9644
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p strait-proxy --bin strait

FROM debian:bookworm-slim
# CA certificates for object stores over HTTPS (S3, GCS, Azure); a working
# directory Strait may write, for the default local claim-check store.
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 strait \
    && mkdir -p /var/lib/strait && chown strait /var/lib/strait
WORKDIR /var/lib/strait
COPY --from=build /src/target/release/strait /usr/local/bin/strait
USER strait
EXPOSE 9092 9644
ENTRYPOINT ["/usr/local/bin/strait"]
CMD ["--help"]
