"""Tests of the web pages (in headless Chromium) and of the policy sentences they show."""
