"""LangGraph's legacy `langgraph.utils` modules, for code ported from older tutorials."""
