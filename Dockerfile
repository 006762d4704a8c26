FROM python:3.12-slim
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY bot bot
COPY retrieval retrieval
COPY feedback feedback
COPY supportbot supportbot
COPY sync sync
COPY console console
RUN pip install --no-cache-dir -c constraints.txt ".[postgres]"
ENTRYPOINT ["supportbot"]
CMD ["--help"]
