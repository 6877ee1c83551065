"""The staff back office: dashboard, settings, users, plugins, themes.

Each area of the shop adds its pages with `nav_item` so the navigation grows with the shop;
plugins add theirs through the `admin_menu` hook.
"""
