#!/bin/sh
echo haproxy
