"""Synthesis: strategies, the sample scheduler, and the async pipeline that drives them."""
