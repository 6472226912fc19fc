"""Where LangGraph keeps names code ported from it (its own tests above all) imports from its
private `langgraph._internal` package; only names whose values mean the same here."""
