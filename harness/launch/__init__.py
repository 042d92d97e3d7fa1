"""Launching one trial as a child process and following it to its end: its command line and
environment (`command`), the runner that streams its events and stops it when asked
(`runner`), how its ending is classified (`ending`), the GPUs it needs (`gpus`), and
`harness train`, one trial tracked in MLflow without a study (`train`).
"""
