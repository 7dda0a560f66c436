# A small runtime image of the Strait proxy.
#   docker build -t strait .
#   docker run -p 9092:9092 -p 19000-19099:19000-19099 strait \
#     run --upstream kafka:9092 --listen 0.0.0.0:9092 --advertised-host HOST --broker-ports 19000-19099 --admin 0.0.0.0:9644
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p strait-proxy --bin strait

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 strait
COPY --from=build /src/target/release/strait /usr/local/bin/strait
USER strait
EXPOSE 9092 9644
ENTRYPOINT ["/usr/local/bin/strait"]
CMD ["--help"]
