#!/bin/sh
echo member
